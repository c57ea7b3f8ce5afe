"""Firing alerts routed to an `alertmanager` receiver are pushed again at each run, at most every
`resend_interval`, so that Alertmanager does not end them at their `endsAt`; other receivers
hear only the lifecycle's `repeat_interval`. The pipeline over a SQLite state database, its
outbox sent by the real Alertmanager sender to the real Alertmanager of `test_alertmanager`."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import httpx

from alerts.codec import notification_from_json
from alerts.config import AlertmanagerReceiver
from alerts.lifecycle import AlertingConfig
from alerts.pipeline import Alerting, AlertingSettings
from alerts.routing import RootRouteConfig, RoutingTree
from alerts.senders.alertmanager import AlertmanagerSender
from checks.result import Status
from monitor.state import StateStore
from monitor.state.values import thaw
from tests.alert_fixtures import AT, view_run
from tests.test_alertmanager import Alertmanager, alertmanager, client

__all__ = ["alertmanager", "client"]  # the real Alertmanager fixtures, used here by name


def settings(resend: timedelta) -> AlertingSettings:
    """Every alert to `am` (Alertmanager) and `chat` (webhook), one group each, 1s apart."""
    route = RootRouteConfig.model_validate(
        {
            "group_wait": "0s",
            "group_interval": "1s",
            "routes": [
                {"receiver": "am", "continue": True},
                {"receiver": "chat", "continue": True},
            ],
        }
    )
    return AlertingSettings(
        alerting=AlertingConfig(),  # repeat_interval 4h
        tree=RoutingTree.from_config(route, {"am": "alertmanager", "chat": "webhook"}),
        resend=MappingProxyType({"am": resend}),
    )


def pushes(state: StateStore, receiver: str) -> int:
    return len(state.outbox_rows(receiver=receiver))


def test_each_run_pushes_firing_alerts_to_alertmanager_again(state: StateStore) -> None:
    alerting = Alerting(state, settings(resend=timedelta(minutes=1)))
    for minute in range(4):
        at = AT + timedelta(minutes=minute)
        alerting.after_run(view_run("user_stats", at), at)
    assert (pushes(state, "am"), pushes(state, "chat")) == (4, 1)


def test_runs_closer_than_the_resend_interval_push_once_per_interval(state: StateStore) -> None:
    alerting = Alerting(state, settings(resend=timedelta(minutes=5)))
    for minute in range(11):  # pushes at 0, 5 and 10
        at = AT + timedelta(minutes=minute)
        alerting.after_run(view_run("user_stats", at), at)
    assert pushes(state, "am") == 3


def test_a_resolved_alert_is_not_pushed_again(state: StateStore) -> None:
    alerting = Alerting(state, settings(resend=timedelta(minutes=1)))
    for minute, status in enumerate((Status.FAIL, Status.PASS, Status.PASS)):
        at = AT + timedelta(minutes=minute)
        alerting.after_run(view_run("user_stats", at, status), at)
    rows = state.outbox_rows(receiver="am")
    told = [notification_from_json(thaw(r.notification)).alerts for r in rows]
    assert [[a.state.value for a in alerts] for alerts in told] == [["firing"], ["resolved"]]


def test_alertmanager_keeps_an_alert_firing_past_its_ends_at_because_featmon_resends(
    state: StateStore, alertmanager: Alertmanager, client: httpx.Client
) -> None:
    """endsAt is 3s after each push; runs every second for 6s push it forward each time."""
    receiver = AlertmanagerReceiver(
        type="alertmanager",
        peers=(alertmanager.url,),
        resend_interval="1s",
        firing_ends_after="3s",
    )
    sender = AlertmanagerSender("am", receiver, client)
    alerting = Alerting(state, settings(resend=receiver.resend_interval))
    sent: set[int] = set()
    started = time.monotonic()
    while time.monotonic() - started < 6:
        now = datetime.now(UTC)
        alerting.after_run(view_run("user_stats", now), now)
        for row in state.outbox_rows(receiver="am"):
            if row.id not in sent:
                sender.send(notification_from_json(thaw(row.notification)))
                sent.add(row.id)
        time.sleep(1.05)
    active = [a for a in alertmanager.alerts() if a["status"]["state"] == "active"]
    assert [a["labels"]["alertname"] for a in active] == ["featmon_check_failed"]
    assert len(sent) >= 5


def test_alertmanager_shows_the_alert_resolved_after_the_data_heals(
    state: StateStore, alertmanager: Alertmanager, client: httpx.Client
) -> None:
    """The whole path on real data states: a failing run fires in Alertmanager, a passing run
    (the data healed) resolves it there: `endsAt = now`, so Alertmanager lists it no more."""
    receiver = AlertmanagerReceiver(
        type="alertmanager", peers=(alertmanager.url,), resend_interval="1m"
    )
    sender = AlertmanagerSender("am", receiver, client)
    alerting = Alerting(state, settings(resend=receiver.resend_interval))
    sent: set[int] = set()

    def run(status: Status | None) -> None:
        now = datetime.now(UTC)
        if status is None:
            alerting.tick(now)  # the daemon's timer: flush groups whose interval has passed
        else:
            alerting.after_run(view_run("user_stats", now, status), now)
        for row in state.outbox_rows(receiver="am"):
            if row.id not in sent:
                sender.send(notification_from_json(thaw(row.notification)))
                sent.add(row.id)

    run(Status.FAIL)
    firing = [a for a in alertmanager.alerts() if a["status"]["state"] == "active"]
    assert [a["labels"]["check"] for a in firing] == ["user_stats.freshness@online"]
    time.sleep(0.1)
    run(Status.PASS)
    time.sleep(1.1)  # group_interval 1s: the change waits for it, then the timer sends it
    run(None)
    deadline = time.monotonic() + 10
    while alertmanager.alerts() and time.monotonic() < deadline:
        time.sleep(0.2)  # Alertmanager drops a resolved alert from its API within a moment
    assert alertmanager.alerts() == []
    assert len(sent) == 2
