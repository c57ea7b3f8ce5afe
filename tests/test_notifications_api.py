"""The outbox through the JSON API: each notification's delivery state, attempts and the reason a
dead one gave up, against the real sidecar over a migrated SQLite state database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from monitor.state import StateStore
from tests.alert_fixtures import alert_now
from tests.sidecar import serve


@pytest.fixture
def base(state: StateStore) -> Iterator[str]:
    with serve(state) as url:
        yield url


def test_a_pending_notification_is_listed_with_its_receiver_and_state(
    base: str, state: StateStore
) -> None:
    alert_now(state)
    body = httpx.get(f"{base}/api/v1/notifications", timeout=10).json()
    assert body["count"] == 1
    (row,) = body["notifications"]
    assert (row["receiver"], row["state"], row["status"], row["alerts"]) == (
        "team", "pending", "firing", 1,
    )  # fmt: skip
    assert "claim" not in row
    filtered = httpx.get(f"{base}/api/v1/notifications", params={"state": "dead"}, timeout=10)
    assert filtered.json()["count"] == 0


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"state": "lost"}, "state: expected pending, delivered or dead, found 'lost'"),
        ({"limit": "0"}, "limit"),
        ({"colour": "red"}, "colour: expected one of state, receiver, limit"),
    ],
)
def test_bad_parameters_are_400_naming_them(base: str, params: dict[str, str], detail: str) -> None:
    response = httpx.get(f"{base}/api/v1/notifications", params=params, timeout=10)
    assert response.status_code == 400
    assert detail in response.text


def test_pruning_the_outbox_keeps_pending_notifications(state: StateStore) -> None:
    """Retention deletes delivered (and dead) notifications, never one still to be sent."""
    alert_now(state)
    later = datetime.now(UTC) + timedelta(seconds=1)
    assert state.prune_outbox(later) == 0  # still to be sent: kept
    now = datetime.now(UTC)
    (row,) = state.claim_outbox(now, timedelta(minutes=1), "worker")
    assert state.outbox_delivered(row.id, "worker", now)
    assert state.prune_outbox(later) == 1
    assert state.outbox_rows() == []
