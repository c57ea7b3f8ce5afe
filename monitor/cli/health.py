"""`featmon health --config FILE`: whether the daemon of that configuration is alive, for a
container's health check. It reads `http.listen` from config.yaml (the check files are not
read: a bad one is the daemon's to report, while it keeps running the last good ones) and asks
`/healthz` there, on loopback when the daemon listens on every interface.

    health = probe(Path("/etc/featmon/config.yaml"))
    print(health.reason); sys.exit(0 if health.ok else 1)
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from checks.errors import ConfigError
from checks.source import interpolate, load_yaml, validate
from monitor.config import Config, parse_listen
from monitor.loader import read_text

TIMEOUT = 4.0  # seconds; under the Dockerfile's health check timeout of 5 s
_EVERY_INTERFACE = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1", "[::]": "::1"}  # noqa: S104 - the addresses read, not listened on


@dataclass(frozen=True)
class Health:
    """`ok` when `/healthz` answered 200; `reason` says what was asked and what came back."""

    ok: bool
    reason: str


def probe(
    config_path: Path, env: Mapping[str, str] | None = None, timeout: float = TIMEOUT
) -> Health:
    """Ask `/healthz` of the daemon configured by `config_path`; never raises."""
    try:
        listen = read_listen(config_path, os.environ if env is None else env)
    except ConfigError as exc:
        first = exc.problems[0] if exc.problems else exc
        return Health(ok=False, reason=f"cannot read http.listen: {first}")
    return ask(healthz_url(listen), timeout)


def read_listen(config_path: Path, env: Mapping[str, str]) -> str:
    """`http.listen` of config.yaml (validated with the rest of the file, `${VAR}` read from
    `env`). Raises `ConfigError`."""
    doc = interpolate(load_yaml(read_text(config_path), str(config_path)), env)
    return validate(Config, doc).http.listen


def healthz_url(listen: str) -> str:
    """The URL of `/healthz` for a sidecar listening on `listen` (`host:port`)."""
    host, port = parse_listen(listen)
    host = _EVERY_INTERFACE.get(host, host).strip("[]")
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/healthz"


def ask(url: str, timeout: float) -> Health:
    """GET `url`: healthy on 200, else the status or the connection error."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - an http URL built above
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Health(ok=False, reason=f"{url}: not answering ({reason})")
    if status != 200:
        return Health(ok=False, reason=f"{url}: answered {status}")
    return Health(ok=True, reason=f"{url}: ok")
