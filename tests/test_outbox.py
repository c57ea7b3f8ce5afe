"""The outbox worker against a real state database and real webhook receivers on loopback:
durability across a stop, a restart and a SIGKILL, retries (Retry-After, 5xx, deadline),
permanent failures, lost claims, and two workers sharing one PostgreSQL database."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from alerts.codec import notification_to_json
from alerts.config import Receiver, WebhookReceiver
from alerts.delivery import Delivery, DeliveryOutcome, DeliverySettings, RetryPolicy
from alerts.model import Notification
from alerts.pipeline import Alerting
from alerts.stages import dedup_key
from alerts.stored import AlertChange, AlertScope, NewNotification
from checks.result import Status
from monitor.state import OutboxState, StateStore
from tests.alert_fixtures import a_run, result
from tests.receivers import (
    WEBHOOK_PATH,
    LoopbackReceiver,
    Reply,
    closed_port_url,
    make_notification,
    serving,
    webhook_contract,
)
from tests.test_alert_pipeline import settings
from tests.test_alert_pipeline import url as url  # noqa: PLC0414 - the same two databases

pytestmark = pytest.mark.every_state_backend  # tests/conftest.py: SQLite and PostgreSQL

QUICK = DeliverySettings(
    retry=RetryPolicy(
        base=timedelta(milliseconds=50),
        cap=timedelta(milliseconds=200),
        deadline=timedelta(seconds=30),
    ),
    lease=timedelta(seconds=5),
    poll_interval=timedelta(milliseconds=20),
)
ROOT = Path(__file__).resolve().parent.parent


# -- helpers --------------------------------------------------------------------------------------


def webhook(base_url: str) -> dict[str, Receiver]:
    """The receiver `team`: a webhook whose secret is its path."""
    return {"team": WebhookReceiver(type="webhook", url=SecretStr(base_url + WEBHOOK_PATH))}


def notifications(count: int) -> list[Notification]:
    now = datetime.now(UTC)
    return [
        replace(make_notification(created_at=now), group_key=f"group-{i}") for i in range(count)
    ]


def enqueue(state: StateStore, *sent: Notification) -> None:
    """Put `sent` in the outbox as the pipeline does: in an alert-state transaction."""
    items = tuple(
        NewNotification(
            n.receiver, n.group_key, dedup_key(n), notification_to_json(n), n.created_at
        )
        for n in sent
    )
    with state.alert_transaction(AlertScope.of(()), datetime.now(UTC)) as step:
        assert step is not None
        step.write(AlertChange({}, {}, items))


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s")
        time.sleep(0.02)


def all_in(state: StateStore, wanted: OutboxState) -> Callable[[], bool]:
    return lambda: all(row.state is wanted for row in state.outbox_rows())


def arrived(receiver: LoopbackReceiver) -> list[str]:
    return sorted(str(body["groupKey"]) for body in receiver.bodies())


class Outcomes:
    """An `OutcomeObserver` that remembers."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, DeliveryOutcome]] = []

    def __call__(self, receiver: str, outcome: DeliveryOutcome) -> None:
        self.seen.append((receiver, outcome))


@contextmanager
def running(
    state: StateStore,
    receivers: dict[str, Receiver],
    settings: DeliverySettings = QUICK,
    observer: Outcomes | None = None,
) -> Iterator[Delivery]:
    worker = Delivery.from_config(state, receivers, settings, observer=observer or Outcomes())
    worker.start()
    try:
        yield worker
    finally:
        assert worker.stop(timeout=10)


# -- durability -----------------------------------------------------------------------------------


def test_notifications_enqueued_while_the_receiver_is_down_arrive_once_each_after_a_restart(
    url: str,
) -> None:
    sent = notifications(3)
    with StateStore(url) as before:
        before.migrate()
        enqueue(before, *sent)
        with running(before, webhook(closed_port_url())):
            wait_until(lambda: all(r.attempts >= 2 for r in before.outbox_rows()))
        assert all(r.state is OutboxState.PENDING for r in before.outbox_rows())
    with serving(webhook_contract()) as receiver, StateStore(url) as after:
        with running(after, webhook(receiver.url)):
            wait_until(all_in(after, OutboxState.DELIVERED))
        assert arrived(receiver) == sorted(n.group_key for n in sent)


CHILD = """
import sys
from tests.test_outbox import crashing_child
crashing_child(sys.argv[1], sys.argv[2])
"""


def crashing_child(url: str, receiver_url: str) -> None:
    """The pipeline and the worker, as the daemon runs them, with the receiver down: prints
    `ready` once every notification was attempted, then waits to be killed."""
    with StateStore(url) as state:
        state.migrate()
        views = ("view_a", "view_b", "view_c")
        run = a_run(0, *(result(Status.FAIL, f"{v}.freshness@online", v) for v in views))
        alerting = Alerting(state, settings(group_by=["..."]))
        alerting.after_run(run, datetime.now(UTC))
        lease = replace(QUICK, lease=timedelta(milliseconds=500))
        worker = Delivery.from_config(state, webhook(receiver_url), lease)
        worker.start()
        wait_until(lambda: all(r.attempts >= 1 for r in state.outbox_rows()))
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        time.sleep(60)


def test_a_daemon_killed_with_sigkill_during_an_outage_loses_no_notification(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, url, closed_port_url()],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline() == "ready\n"
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    with serving(webhook_contract()) as receiver, StateStore(url) as state:
        rows = state.outbox_rows()
        assert len(rows) == 3
        with running(state, webhook(receiver.url)):
            wait_until(all_in(state, OutboxState.DELIVERED))
        assert arrived(receiver) == sorted(r.group_key for r in rows)


def test_a_row_claimed_by_a_worker_that_died_is_sent_when_its_lease_ends(
    state: StateStore,
) -> None:
    [sent] = notifications(1)
    enqueue(state, sent)
    lease = timedelta(milliseconds=300)
    claimed = time.monotonic()  # the lease runs from the claim's `now`, not from its return
    assert len(state.claim_outbox(datetime.now(UTC), lease, "dead-worker")) == 1
    with serving(webhook_contract()) as receiver, running(state, webhook(receiver.url)):
        wait_until(all_in(state, OutboxState.DELIVERED))
        assert time.monotonic() - claimed >= 0.3
    assert arrived(receiver) == [sent.group_key]
    assert state.outbox_rows()[0].attempts == 2
    assert (
        state.outbox_delivered(state.outbox_rows()[0].id, "dead-worker", datetime.now(UTC)) is False
    )


# -- retries --------------------------------------------------------------------------------------


def test_a_429_with_retry_after_is_retried_no_sooner_than_it_asks(state: StateStore) -> None:
    enqueue(state, *notifications(1))
    with serving(webhook_contract()) as receiver:
        receiver.script(Reply(429, "slow down", {"Retry-After": "1"}))
        with running(state, webhook(receiver.url)):
            wait_until(all_in(state, OutboxState.DELIVERED))
        first, second = receiver.arrivals
    assert second.at - first.at >= 1.0
    assert [r.status for r in receiver.replies] == [429, 200]


def test_a_burst_of_5xx_is_retried_until_the_receiver_takes_it(state: StateStore) -> None:
    enqueue(state, *notifications(1))
    outcomes = Outcomes()
    with serving(webhook_contract()) as receiver:
        receiver.script(*[Reply(503, "unavailable")] * 3)
        with running(state, webhook(receiver.url), observer=outcomes):
            wait_until(all_in(state, OutboxState.DELIVERED))
    [row] = state.outbox_rows()
    assert row.attempts == 4
    retried, delivered = DeliveryOutcome.RETRIED, DeliveryOutcome.DELIVERED
    assert outcomes.seen == [("team", retried)] * 3 + [("team", delivered)]


def test_a_permanent_failure_is_dead_at_once_with_the_reason_and_no_secret(
    state: StateStore, caplog: pytest.LogCaptureFixture
) -> None:
    enqueue(state, *notifications(1))
    outcomes = Outcomes()
    with serving(webhook_contract()) as receiver:
        receiver.script(Reply(400, f"no such hook {WEBHOOK_PATH}"))
        with running(state, webhook(receiver.url), observer=outcomes):
            wait_until(all_in(state, OutboxState.DEAD))
    [row] = state.outbox_rows()
    assert row.attempts == 1
    assert row.last_error is not None
    assert "HTTP 400: no such hook" in row.last_error
    assert "s3cr3t" not in row.last_error
    assert "s3cr3t" not in caplog.text
    assert outcomes.seen == [("team", DeliveryOutcome.DEAD)]


def test_a_notification_still_failing_at_the_deadline_is_dead(state: StateStore) -> None:
    enqueue(state, *notifications(1))
    short = replace(QUICK, retry=replace(QUICK.retry, deadline=timedelta(milliseconds=500)))
    with serving(lambda _arrival: Reply(503, "down for maintenance")) as receiver:
        with running(state, webhook(receiver.url), short):
            wait_until(all_in(state, OutboxState.DEAD))
        attempts = len(receiver.arrivals)
    [row] = state.outbox_rows()
    assert row.last_error is not None
    assert row.last_error.startswith(f"gave up after {attempts} attempts")
    assert "HTTP 503" in row.last_error
    assert attempts >= 3


def test_a_notification_for_a_receiver_no_longer_configured_is_dead(state: StateStore) -> None:
    enqueue(state, replace(notifications(1)[0], receiver="removed"))
    with serving(webhook_contract()) as receiver, running(state, webhook(receiver.url)):
        wait_until(all_in(state, OutboxState.DEAD))
    assert state.outbox_rows()[0].last_error == "receiver 'removed' is not configured"


def test_backoff_doubles_up_to_the_cap_and_waits_at_least_retry_after() -> None:
    policy = RetryPolicy(base=timedelta(seconds=1), cap=timedelta(seconds=10), jitter=0.0)
    rng = random.Random(7)
    delays = [policy.delay(n, None, rng).total_seconds() for n in range(1, 7)]
    assert delays == [1, 2, 4, 8, 10, 10]
    assert policy.delay(1, 30.0, rng) == timedelta(seconds=30)
    jittered = RetryPolicy(base=timedelta(seconds=8), jitter=0.5)
    assert all(4 <= jittered.delay(1, None, rng).total_seconds() <= 8 for _ in range(100))


# -- replicas -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "state_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_two_workers_on_one_postgresql_database_never_send_a_row_twice(url: str) -> None:
    sent = notifications(40)
    with StateStore(url) as first, StateStore(url) as second:
        first.migrate()
        enqueue(first, *sent)
        small = replace(QUICK, batch=3)
        with serving(lambda _a: Reply(200, "", delay=0.01)) as receiver:
            with (
                running(first, webhook(receiver.url), small),
                running(second, webhook(receiver.url), small),
            ):
                wait_until(all_in(first, OutboxState.DELIVERED))
            assert arrived(receiver) == sorted(n.group_key for n in sent)
