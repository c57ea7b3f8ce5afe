"""The sidecar against requests a browser can forge, on a real server on a free loopback port:
state-changing calls take JSON only (415), from the sidecar's own origin only (403), and every
request must name a Host the sidecar answers to (421), so neither another site nor a DNS name
rebound to 127.0.0.1 can create a silence. And a token that is empty is a configuration error,
not a sidecar that answers 500 to everything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from checks.errors import ConfigError
from checks.source import Document, validate
from monitor.cli.main import main
from monitor.config import Config, HttpConfig
from monitor.state import StateStore
from tests.sidecar import serve

# What a page on another site posted: every alert muted until 2099.
MUTE_ALL = {
    "matchers": ['severity=~".+"'],
    "ends_at": "2099-01-01T00:00:00Z",
    "created_by": "someone@evil.example",
    "comment": "muted",
}


@pytest.fixture
def base(state: StateStore) -> Iterator[str]:
    with serve(state) as url:
        yield url


def silences(base: str) -> list[object]:
    response = httpx.get(f"{base}/api/v1/silences", timeout=10)
    assert response.status_code == 200, response.text
    found: list[object] = response.json()["silences"]
    return found


def post(base: str, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(f"{base}/api/v1/silences", content=body, headers=headers, timeout=10)


def a_silence() -> dict[str, object]:
    """A silence of one view for the next hour, as an operator posts it."""
    ends = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    return {
        "matchers": ['feature_view="user_stats"'],
        "ends_at": ends,
        "created_by": "oncall@example.com",
        "comment": "INC-7 backfill",
    }


# -- content type ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
     "multipart/form-data; boundary=x", "application/jsonx", "text/json"],
)  # fmt: skip
def test_a_post_that_is_not_json_is_415_and_creates_nothing(base: str, content_type: str) -> None:
    """A body a browser may send to another site without asking (text/plain, a form) is refused
    with 415, even when it parses as a silence."""
    response = post(base, json.dumps(MUTE_ALL).encode(), **{"Content-Type": content_type})
    assert response.status_code == 415, response.text
    assert response.json()["error"] == "unsupported media type"
    assert "application/json" in response.json()["detail"]
    assert silences(base) == []


def test_a_post_without_a_content_type_is_415(base: str) -> None:
    """No Content-Type at all is refused too: the rule is JSON, declared."""
    response = post(base, json.dumps(MUTE_ALL).encode())
    assert response.status_code == 415
    assert silences(base) == []


def test_a_delete_without_a_json_content_type_is_415(base: str) -> None:
    """DELETE is state-changing: it declares JSON like POST (its body may be empty)."""
    response = httpx.request("DELETE", f"{base}/api/v1/silences/abc", timeout=10)
    assert response.status_code == 415
    declared = httpx.request(
        "DELETE", f"{base}/api/v1/silences/abc", headers={"Content-Type": "application/json"}
    )
    assert declared.status_code == 404  # reached the endpoint: no such silence


# -- origin ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin",
    ["http://evil.example", "http://127.0.0.2:8000", "null", "http://localhost",
     "file://", "http://127.0.0.1"],
)  # fmt: skip
def test_a_json_post_from_another_origin_is_403_and_says_why(base: str, origin: str) -> None:
    """An Origin that is not the sidecar's own (another host, another port, `null`) is 403,
    with a JSON body naming the Origin rule."""
    response = post(base, json.dumps(MUTE_ALL).encode(), Origin=origin, **JSON_TYPE)
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "forbidden"
    assert "Origin" in response.json()["detail"]
    assert silences(base) == []


def test_sec_fetch_site_cross_site_is_403(base: str) -> None:
    """A browser that says the request comes from another site is refused, Origin or not."""
    response = post(
        base, json.dumps(MUTE_ALL).encode(), **{"Sec-Fetch-Site": "cross-site"}, **JSON_TYPE
    )
    assert response.status_code == 403
    assert "Sec-Fetch-Site" in response.json()["detail"]
    assert silences(base) == []


JSON_TYPE = {"Content-Type": "application/json"}


def test_a_same_origin_json_post_is_accepted(base: str) -> None:
    """The sidecar's own page (Origin its own, Sec-Fetch-Site same-origin) creates a silence."""
    body = a_silence()
    headers = {
        "Origin": base,
        "Sec-Fetch-Site": "same-origin",
        "Content-Type": "application/json; charset=utf-8",
    }
    response = post(base, json.dumps(body).encode(), **headers)
    assert response.status_code == 201, response.text
    assert len(silences(base)) == 1


def test_a_json_post_without_browser_headers_is_accepted(base: str) -> None:
    """curl, scripts and httpx send no Origin: a JSON POST from them goes through."""
    body = a_silence()
    response = post(base, json.dumps(body).encode(), **JSON_TYPE)
    assert response.status_code == 201, response.text


# -- host -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/metrics", "/api/v1/silences", "/reports/"])
def test_an_unknown_host_is_421_on_every_endpoint(base: str, path: str) -> None:
    """A Host the sidecar does not answer to (a DNS name rebound to 127.0.0.1) is refused on
    every endpoint, with a body that says which Host and how to allow one."""
    response = httpx.get(base + path, headers={"Host": "rebind.evil.example:9108"}, timeout=10)
    assert response.status_code == 421
    assert response.json()["error"] == "misdirected request"
    assert "rebind.evil.example" in response.json()["detail"]
    assert "http.allowed_hosts" in response.json()["detail"]


def test_a_rebound_page_posting_to_its_own_origin_is_421(base: str) -> None:
    """DNS rebinding: the page's Origin equals the Host it names, and the Host check stops it."""
    port = base.rsplit(":", 1)[1]
    name = f"rebind.evil.example:{port}"
    headers = {"Host": name, "Origin": f"http://{name}", "Sec-Fetch-Site": "same-origin"}
    response = post(base, json.dumps(MUTE_ALL).encode(), **headers, **JSON_TYPE)
    assert response.status_code == 421
    assert silences(base) == []


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "127.0.0.1", "[::1]", "localhost."])
def test_loopback_names_are_accepted(base: str, host: str) -> None:
    """localhost, 127.0.0.1 and [::1], with or without a port, reach the sidecar."""
    port = base.rsplit(":", 1)[1]
    for value in (host, f"{host}:{port}"):
        response = httpx.get(f"{base}/healthz", headers={"Host": value}, timeout=10)
        assert response.status_code == 200, value


@pytest.mark.parametrize(
    "host", ["localhost:", "localhost:x", "::1", "[::1", "[::1]x", "localhost:\u00b2"]
)
def test_a_host_that_does_not_parse_is_421(base: str, host: str) -> None:
    """A Host that is not `name[:port]` is refused, never a server error."""
    response = httpx.get(f"{base}/healthz", headers={b"Host": host.encode("latin-1")}, timeout=10)
    assert response.status_code == 421


def test_a_missing_host_is_421(base: str) -> None:
    """HTTP/1.0 without a Host header names no host: refused."""
    import socket  # noqa: PLC0415 - a raw request, which httpx cannot send

    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 421"), answer[:80]


def test_a_host_listed_in_allowed_hosts_is_accepted(state: StateStore) -> None:
    """A service's DNS name (what a container listening on 0.0.0.0 is reached by) is let in
    once listed, and a same-origin JSON POST through it works."""
    with serve(state, allowed_hosts=("featmon.monitoring.svc",)) as url:
        port = url.rsplit(":", 1)[1]
        name = f"featmon.monitoring.svc:{port}"
        assert httpx.get(f"{url}/healthz", headers={"Host": name}).status_code == 200
        headers = {"Host": name, "Origin": f"http://{name}", **JSON_TYPE}
        body = a_silence()
        assert post(url, json.dumps(body).encode(), **headers).status_code == 201
        other = httpx.get(f"{url}/healthz", headers={"Host": "featmon.other.svc"})
        assert other.status_code == 421


def test_the_address_a_request_arrived_on_is_accepted(state: StateStore) -> None:
    """Listening on every interface, a scrape by the pod's IP (Host: that IP) is answered;
    another IP in the Host is not."""
    with serve(state, listen="0.0.0.0:0") as url:
        port = url.rsplit(":", 1)[1]
        # 127.0.0.2 stands for the pod's IP: no loopback name, and not the listen address.
        response = httpx.get(f"http://127.0.0.2:{port}/healthz", timeout=10)
        assert response.status_code == 200
        elsewhere = {"Host": f"127.0.0.3:{port}"}  # an address it did not arrive on
        assert httpx.get(f"http://127.0.0.2:{port}/healthz", headers=elsewhere).status_code == 421


# -- config ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hosts",
    [["http://featmon.example"], ["featmon.example:9108"], [""], ["featmon example"],
     ["featmon.example/reports"], ["*"]],
)  # fmt: skip
def test_an_allowed_host_that_is_not_a_host_name_is_refused(hosts: list[str]) -> None:
    """allowed_hosts holds names or addresses, without a scheme, port, path or wildcard."""
    with pytest.raises(ValueError, match="expected a host name or IP address"):
        HttpConfig.model_validate({"allowed_hosts": hosts})


def test_allowed_hosts_take_names_and_addresses() -> None:
    config = HttpConfig.model_validate(
        {"allowed_hosts": ["featmon.monitoring.svc.cluster.local", "10.0.0.7", "[fd00::7]", "ex"]}
    )
    assert config.allowed_hosts == (
        "featmon.monitoring.svc.cluster.local",
        "10.0.0.7",
        "[fd00::7]",
        "ex",
    )


CONFIG = """\
stores:
  lake: {type: parquet, root: .}
checks: checks/*.yaml
http:
  listen: 127.0.0.1:0
  token: ${HTTP_TOKEN}
"""
VIEW = """\
feature_views:
  - name: v
    entity: id
    ttl: 1h
    features: {x: float}
    offline: {store: lake, path: v.parquet}
    checks:
      - {kind: freshness, max: 1h}
"""


def config_with_token(root: Path) -> Path:
    """A valid config.yaml whose http.token (line 6) is `${HTTP_TOKEN}`."""
    (root / "checks").mkdir()
    (root / "checks" / "v.yaml").write_text(VIEW, encoding="utf-8")
    config = root / "config.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    return config


@pytest.mark.parametrize("token", ["", "   ", "\t\n"])
@pytest.mark.parametrize("command", ["validate", "check"])
def test_an_empty_or_blank_token_is_a_located_config_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    token: str,
    command: str,
) -> None:
    """HTTP_TOKEN='' (or blanks) is refused at file, line and field, exit 3."""
    config = config_with_token(tmp_path)
    monkeypatch.setenv("HTTP_TOKEN", token)
    assert main([command, "--config", str(config)]) == 3
    err = capsys.readouterr().err
    assert f"{config}:6: http.token: expected a non-empty token" in err


def test_the_daemon_refuses_an_empty_token_before_it_serves(tmp_path: Path) -> None:
    """`featmon run` with HTTP_TOKEN='' exits 3 with the located error, instead of serving a
    sidecar that answers 500 to every request, /healthz included."""
    config = config_with_token(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "monitor.cli.main", "run", "--config", str(config)],
        env={**os.environ, "HTTP_TOKEN": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3, done.stderr[-2000:]
    assert f"{config}:6: http.token: expected a non-empty token" in done.stderr


def test_a_token_with_surrounding_blanks_is_refused() -> None:
    """A token read with a trailing newline could never match a presented one: refused."""
    with pytest.raises(ConfigError, match="without leading or trailing whitespace"):
        _validated({"token": "s3cret\n"})


def _validated(http: dict[str, object]) -> HttpConfig:
    data = {"stores": {"lake": {"type": "parquet"}}, "checks": "c/*.yaml", "http": http}
    return validate(Config, Document("config.yaml", data)).http
