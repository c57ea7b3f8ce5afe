"""The Alertmanager sender against a real Alertmanager 0.25 (Debian's `prometheus-alertmanager`):
started per test on a free loopback port, with its own storage and clustering off, and always
stopped. Alerts are pushed with `POST /api/v2/alerts` and read back with `GET /api/v2/alerts`."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from alerts.config import AlertmanagerReceiver
from alerts.errors import DeliveryFailed
from alerts.model import AlertState
from alerts.senders import new_client
from alerts.senders.alertmanager import AlertmanagerSender
from tests.receivers import closed_port_url, make_alert, make_notification

BINARY = "/usr/bin/prometheus-alertmanager"
CONFIG = """\
route:
  receiver: nowhere
  group_by: [alertname]
  group_wait: 1h
receivers:
  - name: nowhere
"""


@dataclass(frozen=True)
class Alertmanager:
    url: str
    client: httpx.Client

    def alerts(self) -> list[dict[str, Any]]:
        """What Alertmanager holds as active, silenced or inhibited (never the resolved)."""
        response = self.client.get(self.url + "/api/v2/alerts", timeout=5)
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()
        return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with new_client() as made:
        yield made


@pytest.fixture
def alertmanager(tmp_path: Path, client: httpx.Client) -> Iterator[Alertmanager]:
    if shutil.which(BINARY) is None:
        pytest.fail(f"{BINARY} is missing: apt-get install prometheus-alertmanager")
    (tmp_path / "alertmanager.yml").write_text(CONFIG, encoding="utf-8")
    port = _free_port()
    log = (tmp_path / "alertmanager.log").open("wb")
    process = subprocess.Popen(
        [
            BINARY,
            f"--config.file={tmp_path / 'alertmanager.yml'}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, client, process, tmp_path / "alertmanager.log")
        yield Alertmanager(url, client)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_ready(
    url: str, client: httpx.Client, process: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"Alertmanager exited: {log.read_text(encoding='utf-8')}")
        try:
            if client.get(url + "/-/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail(f"Alertmanager was not ready within 30s: {log.read_text(encoding='utf-8')}")


def sender(peers: list[str], client: httpx.Client) -> AlertmanagerSender:
    config = AlertmanagerReceiver(type="alertmanager", peers=tuple(peers), resend_interval="5m")
    return AlertmanagerSender("am", config, client)


def _parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment)


def test_firing_alerts_are_active_in_alertmanager_until_well_after_the_next_run(
    alertmanager: Alertmanager, client: httpx.Client
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    firing = make_alert(starts_at=now - timedelta(minutes=10))
    other = make_alert("coverage", severity="P2", starts_at=now - timedelta(minutes=10))
    sender([alertmanager.url], client).send(make_notification(firing, other, created_at=now))
    held = {a["labels"]["alertname"]: a for a in alertmanager.alerts()}
    assert set(held) == {"freshness", "coverage"}
    alert = held["freshness"]
    assert alert["status"]["state"] == "active"
    assert alert["labels"]["feature_view"] == "user_stats"
    assert alert["annotations"]["threshold"] == "max 1h 00m"
    assert alert["generatorURL"] == firing.report_url
    assert _parse(alert["endsAt"]) == now + timedelta(minutes=20)  # 4 x the 5m resend interval


def test_a_resolved_push_ends_the_alert_in_alertmanager(
    alertmanager: Alertmanager, client: httpx.Client
) -> None:
    now = datetime.now(UTC)
    started = now - timedelta(minutes=10)
    am = sender([alertmanager.url], client)
    am.send(make_notification(make_alert(starts_at=started), created_at=now))
    assert len(alertmanager.alerts()) == 1
    resolved = make_alert(starts_at=started, state=AlertState.RESOLVED)
    am.send(make_notification(resolved, created_at=datetime.now(UTC)))
    assert alertmanager.alerts() == []


def test_a_dead_peer_does_not_stop_delivery_to_a_live_one(
    alertmanager: Alertmanager, client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    now = datetime.now(UTC)
    peers = [closed_port_url(), alertmanager.url]
    sender(peers, client).send(make_notification(make_alert(starts_at=now), created_at=now))
    assert [a["labels"]["alertname"] for a in alertmanager.alerts()] == ["freshness"]
    assert "accepted by 1 of 2 Alertmanagers" in caplog.text


def test_labels_alertmanager_would_refuse_arrive_made_valid(
    alertmanager: Alertmanager, client: httpx.Client
) -> None:
    now = datetime.now(UTC)
    plain = make_alert(starts_at=now)
    alert = replace(plain, labels={**plain.labels, "team-name": "ml-platform", "empty": ""})
    sender([alertmanager.url], client).send(make_notification(alert, created_at=now))
    (held,) = alertmanager.alerts()
    assert held["labels"]["team_name"] == "ml-platform"
    assert "empty" not in held["labels"]


def test_a_peer_url_without_the_alerts_api_is_a_permanent_failure(
    alertmanager: Alertmanager, client: httpx.Client
) -> None:
    now = datetime.now(UTC)
    with pytest.raises(DeliveryFailed) as caught:
        sender([alertmanager.url + "/wrong-prefix"], client).send(
            make_notification(make_alert(starts_at=now), created_at=now)
        )
    assert caught.value.permanent
    assert "HTTP 404" in caught.value.reason
