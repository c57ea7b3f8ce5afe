"""Alert payloads carry the measured value and the threshold as numbers beside the text people
read: a failing null rate of 100% (1.0) against max 5% (warn 1%) goes through the real alert
pipeline (state database, outbox) and then to each receiver's documented contract on loopback
(PagerDuty Events API v2, Alertmanager's webhook payload version 4, `POST /api/v2/alerts`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import httpx
import pytest

from alerts.codec import notification_from_json
from alerts.model import AlertEvent, AlertState, Notification
from alerts.pipeline import Alerting
from alerts.senders.content import raw_threshold, raw_value
from checks.result import CheckResult, NullRateDetails, RunResult, Status, Threshold
from monitor.state import StateStore
from monitor.state.values import thaw
from tests.receivers import (
    WEBHOOK_PATH,
    PagerDuty,
    alertmanager_contract,
    make_alert,
    serving,
    webhook_contract,
)
from tests.test_alert_pipeline import settings
from tests.test_senders import alertmanager, pd, webhook

AT = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
THRESHOLD = {"max": 0.05, "warn": 0.01, "unit": "ratio"}


def failing_null_rate() -> CheckResult:
    return CheckResult(
        check="user_stats.null_rate.revenue@online",
        kind="null_rate",
        feature_view="user_stats",
        feature="revenue",
        store="redis_prod",
        target="online",
        status=Status.FAIL,
        severity="P1",
        value=1.0,
        threshold=Threshold("max", 0.05, 0.01, "ratio"),
        sample_size=100,
        details=NullRateDetails(nulls=100, rows=100, interval=None),
        labels=MappingProxyType({}),
    )


@pytest.fixture(scope="module")
def notification(tmp_path_factory: pytest.TempPathFactory) -> Notification:
    """The notification the pipeline enqueues for the failing result, read back from the
    outbox as the delivery worker reads it."""
    path: Path = tmp_path_factory.mktemp("state") / "state.db"
    with StateStore(f"sqlite:///{path}") as state:
        state.migrate()
        run = RunResult("run-numbers", AT, AT, AT, (failing_null_rate(),))
        Alerting(state, settings()).after_run(run, AT)
        (row,) = state.outbox_rows()
    return notification_from_json(thaw(row.notification))


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as opened:
        yield opened


def test_the_alert_annotations_hold_the_text_and_the_numbers(notification: Notification) -> None:
    """Annotations are strings (Alertmanager's model): the number's text and the threshold's
    JSON, beside `100%` and the threshold as people read it."""
    (alert,) = notification.alerts
    notes = alert.annotations
    assert (notes["value"], notes["value_raw"]) == ("100%", "1.0")
    assert json.loads(notes["threshold_raw"]) == THRESHOLD
    assert notes["threshold"] != notes["threshold_raw"]


def test_pagerduty_custom_details_carry_value_raw_as_a_number(
    notification: Notification, client: httpx.Client
) -> None:
    service = PagerDuty()
    with serving(service) as server:
        pd(server, client).send(notification)
    assert [r.status for r in server.replies] == [202]
    details: dict[str, Any] = server.bodies()[0]["payload"]["custom_details"]
    assert (details["value"], details["value_raw"]) == ("100%", 1.0)
    assert isinstance(details["value_raw"], float)
    assert details["threshold_raw"] == THRESHOLD
    assert isinstance(details["threshold"], str)


def test_the_webhook_payload_carries_the_numbers_beside_alertmanagers_fields(
    notification: Notification, client: httpx.Client
) -> None:
    """Each alert of the version 4 payload keeps its string annotations (the contract) and adds
    `value_raw` and `threshold_raw` as JSON numbers."""
    with serving(webhook_contract()) as server:
        webhook(server.url + WEBHOOK_PATH, client).send(notification)
    assert [r.status for r in server.replies] == [200]
    (alert,) = server.bodies()[0]["alerts"]
    assert (alert["value_raw"], alert["threshold_raw"]) == (1.0, THRESHOLD)
    assert (alert["annotations"]["value"], alert["annotations"]["value_raw"]) == ("100%", "1.0")


def test_alertmanager_gets_the_numbers_as_annotation_text(
    notification: Notification, client: httpx.Client
) -> None:
    """`POST /api/v2/alerts` takes string annotations only: the number's text, which parses."""
    with serving(alertmanager_contract) as server:
        alertmanager([server.url], client).send(notification)
    assert [r.status for r in server.replies] == [200]
    (alert,) = server.bodies()[0]
    assert float(alert["annotations"]["value_raw"]) == 1.0
    assert json.loads(alert["annotations"]["threshold_raw"]) == THRESHOLD


def test_an_alert_recorded_before_the_numbers_gives_none_rather_than_text() -> None:
    """An older alert has a formatted `value` only: its raw value is None, never `100%`."""
    old = make_alert(annotations={"value": "100%", "unit": "ratio", "threshold": "max 5.00%"})
    assert (raw_value(old), raw_threshold(old)) == (None, None)


def test_a_value_without_a_finite_number_is_null_in_json() -> None:
    """JSON has no infinity: an infinite value is sent as null, its text stays `inf`."""
    alert = AlertEvent(
        labels={"check": "c"},
        annotations={"value": "inf", "value_raw": "inf"},
        state=AlertState.FIRING,
        starts_at=AT,
        ends_at=None,
        severity="P1",
        report_url=None,
    )
    assert raw_value(alert) is None
