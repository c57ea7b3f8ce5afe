"""No secret leaks anywhere: a distinctive secret holding `@#/?%:` is planted in every secret
field of config.yaml, every error path is provoked (wrong credentials for Redis and PostgreSQL,
unreachable servers and state database, receivers that answer 500 echoing what they were sent),
and every channel featmon writes to is searched for any fragment of four characters of any
secret: the command line's output and JSON logs, the HTML reports, /metrics, every /api/v1/*
answer of the sidecar, a dump of the state database, and every body the receivers got."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.receivers import Arrival, LoopbackReceiver, Reply, serving
from tests.redis_fixtures import free_port
from tests.secret_fixtures import (
    EVENTS_VIEW,
    HASH_VIEW,
    REPO,
    RedisUser,
    featmon,
    pg_host,
    redis_host,
    redis_user,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

# Each: two letters between each pair of the characters that split URLs, so that every
# fragment of four characters, raw or percent-encoded, belongs to one secret only.
SECRETS = {
    "REDIS_PW": "OV@PO#SX/sr?SQ%Zr:mO",
    "PG_PW": "ji@sv#Yh/PG?OX%sT:uy",
    "FEAST_PW": "Rg@lP#xM/Vl?wG%uS:yh",
    "DOWN_PW": "kW@mL#my/Kk?hg%tt:jQ",
    "STATE_PW": "KL@Mk#Ws/xH?lz%Hg:Mn",
    "SLACK_TOKEN": "kl@tX#vg/YJ?JZ%Po:XQ",
    "WEBHOOK_PW": "Wo@Kr#pz/uZ?vs%qV:sK",
    "WEBHOOK_TOKEN": "UJ@io#HI/lQ?kM%hR:Wg",
    "WEBHOOK_HMAC": "RU@ZY#jN/RM?yT%LY:zJ",
    "PD_KEY": "JQ@QI#tH/HR?ok%nO:Zt",
    "PD_PW": "QN@ki#Zu/yw?nV%vM:Pl",
    "AM_PW": "um@yJ#IZ/to?ih%QW:gz",
    "HTTP_TOKEN": "HO@nj#zT/jq?TK%VG:Lu",
}
FRAGMENT = 4


def fragments(secret: str) -> set[str]:
    """Every four characters of the secret, as it is and percent-encoded."""
    return {
        form[i : i + FRAGMENT]
        for form in (secret, quote(secret, safe=""))
        for i in range(len(form) - FRAGMENT + 1)
    }


def leaks(text: str, allowed: frozenset[str] = frozenset()) -> list[str]:
    """`name: fragment` for every fragment of a secret (not `allowed`) found in `text`."""
    return sorted(
        f"{name}: {fragment!r}"
        for name, secret in SECRETS.items()
        if name not in allowed
        for fragment in fragments(secret)
        if fragment in text
    )


def test_the_planted_secrets_share_no_fragment() -> None:
    """A fragment found names one secret: no two secrets have one in common."""
    seen: set[str] = set()
    for secret in SECRETS.values():
        assert not fragments(secret) & seen
        seen |= fragments(secret)


def echo(arrival: Arrival) -> Reply:
    """A receiver that fails, repeating the path and the body it was sent."""
    return Reply(500, f"cannot take {arrival.path}: {arrival.body.decode('utf-8', 'replace')}")


@pytest.fixture
def receivers() -> Iterator[dict[str, LoopbackReceiver]]:
    with (
        serving(echo) as slack,
        serving(echo) as pagerduty,
        serving(echo) as webhook,
        serving(echo) as alertmanager,
    ):
        yield {"slack": slack, "pagerduty": pagerduty, "webhook": webhook, "am": alertmanager}


@pytest.fixture
def wrong_redis_user() -> Iterator[RedisUser]:
    """A real user whose password is not the configured one."""
    yield from redis_user("the-right-password-is-not-configured")


def config_text(receivers: Mapping[str, LoopbackReceiver], user: RedisUser, state: str) -> str:
    def at(name: str) -> str:
        return receivers[name].url.removeprefix("http://")

    slack_token = quote(SECRETS["SLACK_TOKEN"], safe="")
    down = f"127.0.0.1:{free_port()}"
    return f"""\
stores:
  redis_wrong:
    type: redis
    url: "redis://{user.name}:${{REDIS_PW}}@{redis_host()}"
    layout: hash
    key_template: "{user.prefix}:{{feature_view}}:{{user_id}}"
    timeout: 5s
  redis_down: {{type: redis, url: "redis://u:${{DOWN_PW}}@{down}/0", layout: hash,
               key_template: "k:{{feature_view}}:{{user_id}}", timeout: 2s}}
  pg_wrong: {{type: sql, timeout: 5s,
             url: "postgresql+psycopg://featmon_secrets_nobody:${{PG_PW}}@{pg_host()}/postgres"}}
  pg_down: {{type: sql, timeout: 2s, url: "postgresql+psycopg://u:${{DOWN_PW}}@{down}/db"}}
  feast_wrong: {{type: feast-sql, project: p, timeout: 5s,
                url: "postgresql+psycopg://featmon_secrets_nobody@{pg_host()}/postgres?password=${{FEAST_PW}}"}}
checks: checks/*.yaml
receivers:
  slack:
    type: slack
    webhook_url: "http://{at("slack")}/services/T0FEATMON/B0FEATMON/{slack_token}"
    max_per_second: 100
    timeout: 2s
  pagerduty:
    type: pagerduty
    routing_key: ${{PD_KEY}}
    url: "http://pd:${{PD_PW}}@{at("pagerduty")}/v2/enqueue"
    timeout: 2s
  webhook:
    type: webhook
    url: "http://hook:${{WEBHOOK_PW}}@{at("webhook")}/hooks/in?token=${{WEBHOOK_TOKEN}}"
    hmac_secret: ${{WEBHOOK_HMAC}}
    timeout: 2s
  alertmanager:
    type: alertmanager
    peers: ["http://am:${{AM_PW}}@{at("am")}"]
    timeout: 2s
route:
  group_wait: 0s
  group_interval: 1s
  routes:
    - {{receiver: slack, continue: true}}
    - {{receiver: pagerduty, continue: true}}
    - {{receiver: webhook, continue: true}}
    - {{receiver: alertmanager, continue: true}}
http:
  listen: 127.0.0.1:{{port}}
  token: ${{HTTP_TOKEN}}
state: {{url: "{state}"}}
reports: {{dir: reports}}
"""


CHECKS = {
    "redis_wrong": HASH_VIEW.replace("name: u", "name: u_wrong"),
    "redis_down": HASH_VIEW.replace("name: u", "name: u_down"),
    "pg_wrong": EVENTS_VIEW.replace("name: events", "name: e_wrong"),
    "pg_down": EVENTS_VIEW.replace("name: events", "name: e_down"),
    "feast_wrong": HASH_VIEW.replace("name: u", "name: u_feast"),
}


def write_config(root: Path, text: str, name: str, port: int) -> Path:
    (root / "checks").mkdir(exist_ok=True)
    for store, view in CHECKS.items():
        body = view.format(store=store).replace("max: 0.5}", "max: 0.5, severity: P1}")
        body = body.replace("min: 1}", "min: 1, severity: P1}") + "    schedule: {every: 2s}\n"
        (root / "checks" / f"{store}.yaml").write_text(body, encoding="utf-8")
    path = root / name
    path.write_text(text.replace("{port}", str(port)), encoding="utf-8")
    return path


class Channels:
    """Every text looked at, by where it came from."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}
        self.allowed: dict[str, frozenset[str]] = {}

    def add(self, where: str, text: str, allowed: frozenset[str] = frozenset()) -> None:
        self.texts[where] = text
        self.allowed[where] = allowed

    def leaks(self) -> list[str]:
        return [
            f"{where}: {leak}"
            for where, text in self.texts.items()
            for leak in leaks(text, self.allowed[where])
        ]


def wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def test_no_fragment_of_any_secret_reaches_any_channel(
    tmp_path: Path,
    receivers: dict[str, LoopbackReceiver],
    wrong_redis_user: RedisUser,
) -> None:
    """With a secret holding `@#/?%:` in every secret field and every error path provoked, no
    four characters of any secret appear in any output, answer, stored row or sent body."""
    env = dict(SECRETS)
    channels = Channels()
    down_state = f"postgresql+psycopg://featmon:${{STATE_PW}}@127.0.0.1:{free_port()}/state"
    text = config_text(receivers, wrong_redis_user, down_state)

    # featmon validate and featmon check, with the state database unreachable
    check_config = write_config(tmp_path, text, "check.yaml", free_port())
    for args in (["validate"], ["--log-format", "json", "check"]):
        ran = featmon([*args, "--config", str(check_config)], env, tmp_path)
        assert "Traceback" not in ran.stderr, ran.stderr
        channels.add(f"{args[-1]} stdout", ran.stdout)
        channels.add(f"{args[-1]} stderr", ran.stderr)
    assert ran.code == 3  # every probe failed: an error, not a crash
    assert "state database" in ran.stderr  # the state error path was taken
    for report in sorted((tmp_path / "reports").glob("*.html")):
        channels.add(f"report {report.name}", report.read_text(encoding="utf-8"))

    # featmon run: the daemon, its sidecar, deliveries to receivers that fail
    port = free_port()
    state_file = tmp_path / "state.db"
    run_config = write_config(
        tmp_path, text.replace(down_state, f"sqlite:///{state_file}"), "run.yaml", port
    )
    daemon = subprocess.Popen(  # the process this test starts and stops, by its own handle
        [sys.executable, "-m", "monitor.cli.main", "--log-format", "json", "run", "--config",
         str(run_config), "--workers", "4"],
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        wait_for(
            lambda: (
                all(r.arrivals for r in receivers.values())
                and all(len(r.arrivals) >= 2 for r in receivers.values())
            ),
            90,
            "every receiver to be tried twice",
        )
        channels_of_sidecar(port, channels)
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, err = daemon.communicate(timeout=60)
    channels.add("run stdout", out)
    channels.add("run stderr (JSON logs)", err)
    assert [json.loads(line)["level"] for line in err.splitlines() if line.startswith("{")]
    assert "HTTP 500" in err  # the delivery failure path was taken

    with sqlite3.connect(state_file) as db:
        channels.add("state database dump", "\n".join(db.iterdump()))
    for name, receiver in receivers.items():
        bodies = "\n".join(a.body.decode("utf-8", "replace") for a in receiver.arrivals)
        allowed = frozenset({"PD_KEY"}) if name == "pagerduty" else frozenset()
        channels.add(f"bodies sent to {name}", bodies, allowed)

    for leak in channels.leaks():
        print(leak)  # noqa: T201 - what leaked, and where
    places = len(channels.texts)
    print(f"looked for {len(SECRETS)} secrets in {places} places")  # noqa: T201 - the figure
    assert places >= 20
    assert channels.leaks() == []


def channels_of_sidecar(port: int, channels: Channels) -> None:
    """/metrics, health, every /api/v1/* answer and every report of the daemon's sidecar."""
    base = f"http://127.0.0.1:{port}"
    token = {"Authorization": f"Bearer {SECRETS['HTTP_TOKEN']}"}
    with httpx.Client(base_url=base, headers=token, timeout=10) as client:
        wait_for(
            lambda: "HTTP 500" in client.get("/api/v1/notifications").text,
            60,
            "a failed delivery to be recorded",
        )
        paths = [
            "/metrics",
            "/healthz",
            "/readyz",
            "/reports/",
            "/api/v1/status",
            "/api/v1/results",
            "/api/v1/runs",
            "/api/v1/notifications",
            "/api/v1/silences",
        ]
        for path in paths:
            channels.add(f"GET {path}", client.get(path).text)
        runs = set(
            re.findall(
                r'href="/?(?:reports/)?(\d{8}T\d{6}Z-[0-9a-f]+)', channels.texts["GET /reports/"]
            )
        )
        assert runs, channels.texts["GET /reports/"][:2000]
        for run_id in sorted(runs)[:5]:
            channels.add(f"GET /reports/{run_id}", client.get(f"/reports/{run_id}").text)
        refused = httpx.get(f"{base}/api/v1/status", headers={"Authorization": "Bearer wrong"})
        channels.add("GET /api/v1/status with a wrong token", refused.text)
