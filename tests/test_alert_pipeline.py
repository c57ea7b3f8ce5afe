"""The alert pipeline over a real state database (a SQLite file and PostgreSQL): runs become
alert records, grouped notifications and outbox rows, in one transaction; plus the JSON codec
of the values the outbox and the grouper keep. Runs are five minutes apart from `AT`, each
processed at its scheduled time."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from alerts.codec import (
    CodecError,
    groups_from_json,
    groups_to_json,
    notification_from_json,
    notification_to_json,
    record_from_json,
)
from alerts.lifecycle import AlertingConfig
from alerts.model import AlertState
from alerts.pipeline import Alerted, Alerting, AlertingSettings
from alerts.routing import GroupState, RootRouteConfig, Routed, RoutingTree, group
from alerts.silences import Silence, Silences
from checks.result import Status
from monitor.config import Config
from monitor.daemon.notify import alerting_settings
from monitor.state import MIGRATIONS, OutboxRow, OutboxState, StateStore
from monitor.state import outbox as outbox_sql
from monitor.state.values import thaw
from tests.alert_fixtures import AT, STEP, a_run, result
from tests.receivers import make_alert, make_notification

pytestmark = pytest.mark.every_state_backend  # tests/conftest.py: SQLite and PostgreSQL

PASS, FAIL = Status.PASS, Status.FAIL


# -- builders -------------------------------------------------------------------------------------


def settings(
    group_wait: str = "0s",
    silences: Silences | None = None,
    group_by: list[str] | None = None,
    **alerting: object,
) -> AlertingSettings:
    """Every alert to the receiver `team`, grouped by store (or `group_by`) after `group_wait`."""
    route = RootRouteConfig.model_validate(
        {"receiver": "team", "group_wait": group_wait, "group_by": group_by}
    )
    return AlertingSettings(
        alerting=AlertingConfig.model_validate(alerting),
        tree=RoutingTree.from_config(route, {"team": "webhook"}),
        silences=silences or Silences(),
        external_url="https://featmon.example/",
    )


def play(alerting: Alerting, *statuses: Status, start: int = 0) -> list[Alerted]:
    """One run of the freshness check per status, each processed at its scheduled time."""
    out = []
    for index, status in enumerate(statuses, start):
        run = a_run(index, result(status))
        out.append(alerting.after_run(run, run.scheduled_at))
    return out


def states(row: OutboxRow) -> list[str]:
    return [a.state.value for a in notification_from_json(thaw(row.notification)).alerts]


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
def url(state_url: str) -> str:
    """The empty state database of each backend (tests/conftest.py), which the `state`
    fixture migrates."""
    return state_url


# -- the schema -----------------------------------------------------------------------------------


def test_migration_2_adds_the_alert_tables_to_a_version_1_database(url: str) -> None:
    with StateStore(url, migrations=MIGRATIONS[:1]) as v1:
        assert v1.migrate() == [1]
    with StateStore(url, migrations=MIGRATIONS[:2]) as v2:
        assert v2.migrate() == [2]
        assert v2.outbox_rows() == []


def test_migration_4_adds_the_silences_table_to_a_version_3_database(url: str) -> None:
    with StateStore(url, migrations=MIGRATIONS[:3]) as v3:
        assert v3.migrate() == [1, 2, 3]
    with StateStore(url, migrations=MIGRATIONS[:4]) as v4:
        assert v4.migrate() == [4]
        assert v4.silences(AT) == []


# -- the lifecycle through the pipeline -----------------------------------------------------------


def test_a_check_failing_for_two_runs_is_notified_once_after_the_second(state: StateStore) -> None:
    alerting = Alerting(state, settings(for_runs=2))
    first, second, third = play(alerting, FAIL, FAIL, FAIL)
    assert (len(first.notifications), len(second.notifications), len(third.notifications)) == (
        0,
        1,
        0,
    )
    [row] = state.outbox_rows()
    assert (row.receiver, row.state, states(row)) == ("team", OutboxState.PENDING, ["firing"])


def test_a_healing_run_enqueues_a_resolved_notification(state: StateStore) -> None:
    alerting = Alerting(state, settings(for_runs=2))
    play(alerting, FAIL, FAIL, PASS)
    assert [states(row) for row in state.outbox_rows()] == [["firing"], ["resolved"]]


def test_a_flapping_check_is_never_notified(state: StateStore) -> None:
    alerting = Alerting(state, settings(for_runs=2))
    play(alerting, FAIL, PASS, FAIL, PASS, FAIL, PASS)
    assert state.outbox_rows() == []


def test_alert_records_survive_a_new_store_on_the_same_database(url: str) -> None:
    """The pending streak is in the database, not the process: a restart keeps counting."""
    with StateStore(url) as before:
        before.migrate()
        play(Alerting(before, settings(for_runs=2)), FAIL)
    with StateStore(url) as after:
        alerted = play(Alerting(after, settings(for_runs=2)), FAIL, start=1)
        assert len(alerted[0].notifications) == 1


def test_a_run_alerted_twice_enqueues_its_notifications_once(state: StateStore) -> None:
    alerting = Alerting(state, settings())
    run = a_run(0, result(FAIL))
    assert len(alerting.after_run(run, AT).notifications) == 1
    assert alerting.after_run(run, AT) == Alerted(skipped=True)
    assert len(state.outbox_rows()) == 1


def test_a_failure_while_writing_leaves_records_groups_and_outbox_as_they_were(
    state: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The records are written before the groups fail: the transaction takes them back, and
    the same run processed again produces the notification."""
    alerting = Alerting(state, settings())
    run = a_run(0, result(FAIL))

    def broken(*_args: object) -> None:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(outbox_sql, "_write_groups", broken)
    with pytest.raises(RuntimeError):
        alerting.after_run(run, AT)
    assert state.alert_documents().records == {}
    assert state.outbox_rows() == []
    monkeypatch.undo()
    assert len(alerting.after_run(run, AT).notifications) == 1
    assert len(state.outbox_rows()) == 1


def test_a_new_group_waits_group_wait_then_the_timer_sends_it(state: StateStore) -> None:
    alerting = Alerting(state, settings(group_wait="30s"))
    [alerted] = play(alerting, FAIL)
    assert alerted.notifications == ()
    assert alerting.next_flush() == AT + timedelta(seconds=30)
    assert alerting.tick(AT + timedelta(seconds=29)) == Alerted()
    sent = alerting.tick(AT + timedelta(seconds=30))
    assert [n.status for n in sent.notifications] == ["firing"]
    assert [states(row) for row in state.outbox_rows()] == [["firing"]]
    assert alerting.next_flush() is None


def test_a_silenced_alert_is_counted_and_not_enqueued(state: StateStore) -> None:
    silence = Silence.model_validate(
        {
            "id": "maint-1",
            "matchers": ['feature_view="user_stats"'],
            "starts_at": AT - STEP,
            "ends_at": AT + STEP,
            "created_by": "ops",
            "comment": "backfill",
        }
    )
    alerting = Alerting(state, settings(silences=Silences((silence,))))
    [alerted] = play(alerting, FAIL)
    assert [s.silence.id for s in alerted.suppressed] == ["maint-1"]
    assert state.outbox_rows() == []


def add_api_silence(state: StateStore, silence_id: str, starts: datetime, ends: datetime) -> None:
    """As `POST /api/v1/silences` stores one: the validated silence's JSON."""
    silence = Silence.model_validate(
        {
            "id": silence_id,
            "matchers": ['feature_view="user_stats"'],
            "starts_at": starts,
            "ends_at": ends,
            "created_by": "oncall",
            "comment": "INC-7",
        }
    )
    state.add_silence(silence_id, silence.model_dump(mode="json"), (starts, ends), starts)


def test_an_api_silence_mutes_a_due_notification_until_it_is_expired(state: StateStore) -> None:
    """Firing at run 0 under an API silence: recorded as silenced, nothing enqueued. Expired
    before run 1, the still-due firing notification goes out at run 1."""
    add_api_silence(state, "api-1", AT - STEP, AT + 10 * STEP)
    alerting = Alerting(state, settings())
    [muted] = play(alerting, FAIL)
    assert [s.silence.id for s in muted.suppressed] == ["api-1"]
    assert state.outbox_rows() == []
    assert state.expire_silence("api-1", AT + STEP / 2) is not None
    [sent] = play(alerting, FAIL, start=1)
    assert sent.suppressed == ()
    assert [states(row) for row in state.outbox_rows()] == [["firing"]]


def test_config_and_api_silences_apply_together(state: StateStore) -> None:
    """The config silence covers run 0 only, the API silence run 1 only: neither run sends."""
    config = Silence.model_validate(
        {
            "id": "config-1",
            "matchers": ['store="redis_prod"'],
            "starts_at": AT - STEP,
            "ends_at": AT + STEP / 2,
            "created_by": "ops",
            "comment": "maintenance",
        }
    )
    add_api_silence(state, "api-1", AT + STEP / 2, AT + 2 * STEP)
    alerting = Alerting(state, settings(silences=Silences((config,))))
    first, second = play(alerting, FAIL, FAIL)
    assert [s.silence.id for s in first.suppressed] == ["config-1"]
    assert [s.silence.id for s in second.suppressed] == ["api-1"]
    assert state.outbox_rows() == []


def test_an_api_silence_that_does_not_read_is_ignored(state: StateStore) -> None:
    state.add_silence("broken", {"id": "broken", "matchers": []}, (AT - STEP, AT + STEP), AT)
    [alerted] = play(Alerting(state, settings()), FAIL)
    assert alerted.suppressed == ()
    assert len(state.outbox_rows()) == 1


def test_enqueueing_wakes_the_delivery_worker(state: StateStore) -> None:
    woken = threading.Event()
    play(Alerting(state, settings(), wake=woken.set), FAIL)
    assert woken.is_set()


def test_replicas_alerting_at_once_lose_no_record(url: str) -> None:
    """Eight views alerted from four stores of their own at the same moment: each step reads
    and writes under the alert-state lock, so every view's alert is kept."""
    stores = [StateStore(url) for _ in range(4)]
    stores[0].migrate()
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def replica(store: StateStore, views: list[str]) -> None:
        start.wait()
        try:
            for view in views:
                run = a_run(0, result(FAIL, check=f"{view}.freshness@online", view=view))
                Alerting(store, settings(for_runs=2)).after_run(run, AT)
        except BaseException as exc:  # noqa: BLE001 - asserted empty below
            errors.append(exc)

    threads = [
        threading.Thread(target=replica, args=(s, [f"view{i}", f"view{i + 4}"]))
        for i, s in enumerate(stores)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = stores[0].alert_documents().records
    for store in stores:
        store.close()
    assert errors == []
    views = {record_from_json(r.document).labels["feature_view"] for r in records.values()}
    assert views == {f"view{i}" for i in range(8)}


def test_settings_from_config_route_to_the_configured_receivers() -> None:
    config = Config.model_validate(
        {
            "stores": {"warehouse": {"type": "sql", "url": "sqlite:///w.db"}},
            "checks": "checks/*.yaml",
            "receivers": {"pd": {"type": "pagerduty", "routing_key": "k" * 32}},
            "reports": {"base_url": "https://featmon.example/"},
        }
    )
    built = alerting_settings(config)
    p1 = {"severity": "P1", "store": "redis_prod"}
    assert [m.receiver for m in built.tree.route(p1)] == ["pd"]
    assert built.external_url == "https://featmon.example/"


# -- the codec ------------------------------------------------------------------------------------


def test_a_notification_reads_back_equal_from_its_json() -> None:
    resolved = make_alert(
        "coverage", state=AlertState.RESOLVED, ends_at=AT + STEP, report_url=None, team="ml"
    )
    notification = make_notification(make_alert(), resolved)
    assert notification_from_json(notification_to_json(notification)) == notification


def test_the_grouper_state_reads_back_equal_from_its_json() -> None:
    tree = settings(group_wait="30s").tree
    events = [make_alert(), make_alert("coverage", state=AlertState.RESOLVED, ends_at=AT)]
    routed = [Routed(e, tuple(tree.route(e.labels))) for e in events]
    grouped = group(group(GroupState(), routed, AT).state, (), AT + STEP)
    assert grouped.state.groups  # a firing alert keeps its group
    assert groups_from_json(groups_to_json(grouped.state)) == grouped.state


def test_a_stored_notification_missing_a_field_is_a_codec_error_naming_it() -> None:
    doc = notification_to_json(make_notification())
    alerts = doc["alerts"]
    assert isinstance(alerts, list)
    first = alerts[0]
    assert isinstance(first, dict)
    del first["starts_at"]
    with pytest.raises(CodecError, match=r"notification\.alerts\[0\]\.starts_at"):
        notification_from_json(doc)


def test_a_notification_with_a_naive_time_is_refused() -> None:
    doc = notification_to_json(replace(make_notification(), created_at=AT))
    doc["created_at"] = AT.replace(tzinfo=None).isoformat()
    with pytest.raises(CodecError, match="created_at"):
        notification_from_json(doc)


def test_settings_from_config_resend_to_alertmanager_receivers_only() -> None:
    config = Config.model_validate(
        {
            "stores": {"warehouse": {"type": "sql", "url": "sqlite:///w.db"}},
            "checks": "checks/*.yaml",
            "receivers": {
                "am": {
                    "type": "alertmanager",
                    "peers": ["http://am:9093"],
                    "resend_interval": "2m",
                },
                "pd": {"type": "pagerduty", "routing_key": "k" * 32},
            },
        }
    )
    assert dict(alerting_settings(config).resend) == {"am": timedelta(minutes=2)}
