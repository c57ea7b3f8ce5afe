"""An alerting step reads, locks and rewrites only its part of the alert state: a run's step the
records of its run's feature view and the groups its alerts go to, the grouper's timer the due
groups. Over real state databases (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from types import MappingProxyType

import pytest
import sqlalchemy as sa

from alerts.codec import notification_from_json, record_to_json
from alerts.lifecycle import AlertingConfig, advance
from alerts.pipeline import Alerting, AlertingSettings
from alerts.routing import RootRouteConfig, RoutingTree
from alerts.stored import AlertScope
from monitor.state import MIGRATIONS, StateStore
from monitor.state import outbox as outbox_sql
from monitor.state.values import thaw
from tests.alert_fixtures import AT, view_run

pytestmark = pytest.mark.every_state_backend  # tests/conftest.py: SQLite and PostgreSQL

VIEWS = ("v0", "v1", "v2")


def settings(group_by: list[str], resend: timedelta | None = None) -> AlertingSettings:
    route = RootRouteConfig.model_validate(
        {"receiver": "am", "group_wait": "0s", "group_interval": "1s", "group_by": group_by}
    )
    return AlertingSettings(
        alerting=AlertingConfig(),
        tree=RoutingTree.from_config(route, {"am": "alertmanager"}),
        resend=MappingProxyType({} if resend is None else {"am": resend}),
    )


class Spied(StateStore):
    """The real state database, telling which records and groups each step's transaction read."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.read: list[tuple[set[str], set[tuple[str, str]]]] = []

    @contextlib.contextmanager
    def alert_transaction(  # the same context, spied on
        self, scope: AlertScope, now: datetime, run_id: str | None = None
    ) -> Iterator[outbox_sql.ScopedAlerts | None]:
        with super().alert_transaction(scope, now, run_id) as tx:
            if tx is not None:
                views = {r.feature_view for r in tx.records.values()}
                spy = tx.groups
                groups: set[tuple[str, str]] = set()

                def groups_read(idents: object) -> object:
                    found = spy(idents)  # type: ignore[arg-type]
                    groups.update(found)
                    return found

                tx.groups = groups_read  # type: ignore[method-assign,assignment]
                self.read.append((views, groups))
            yield tx


@pytest.fixture
def url(state_url: str) -> str:
    """The empty state database of each backend (tests/conftest.py)."""
    return state_url


def test_a_runs_step_reads_only_its_views_records_and_the_groups_they_go_to(url: str) -> None:
    state = Spied(url)
    with state:
        state.migrate()
        alerting = Alerting(state, settings(group_by=["feature_view"]))
        for view in VIEWS:
            alerting.after_run(view_run(view, AT), AT)
        state.read.clear()
        alerting.after_run(view_run("v1", AT + timedelta(minutes=1)), AT + timedelta(minutes=1))
        assert state.read == [({"v1"}, {("am", 'route{feature_view="v1"}')})]


def test_a_group_shared_by_views_resends_every_views_firing_alert(url: str) -> None:
    """v0's run finds the shared group due for a resend, and quotes v1's alert read from the
    store, though its step locked only v0's records."""
    with StateStore(url) as state:
        state.migrate()
        alerting = Alerting(state, settings(group_by=["store"], resend=timedelta(minutes=1)))
        alerting.after_run(view_run("v0", AT), AT)
        alerting.after_run(view_run("v1", AT), AT + timedelta(seconds=2))
        later = AT + timedelta(minutes=5)
        alerting.after_run(view_run("v0", later), later)
        last = state.outbox_rows()[-1]
        alerts = notification_from_json(thaw(last.notification)).alerts
    assert sorted(a.labels["feature_view"] for a in alerts) == ["v0", "v1"]


def test_migration_5_gives_each_stored_alert_record_its_feature_view(url: str) -> None:
    record = next(iter(advance({}, view_run("v2", AT), AlertingConfig(), AT).records.values()))
    with StateStore(url, migrations=MIGRATIONS[:4]) as v4:
        v4.migrate()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        table = sa.table(
            "alert_records", sa.column("fingerprint"), sa.column("record", sa.JSON),
            sa.column("updated_at"),
        )  # fmt: skip
        conn.execute(
            sa.insert(table).values(
                fingerprint=record.fingerprint, record=record_to_json(record), updated_at=AT
            )
        )
    engine.dispose()
    with StateStore(url, migrations=MIGRATIONS[:5]) as state:
        assert state.migrate() == [5]
        with state.alert_transaction(AlertScope.of({"v2"}), AT) as tx:
            assert tx is not None
            assert {fp: r.feature_view for fp, r in tx.records.items()} == {
                record.fingerprint: "v2"
            }
        with state.alert_transaction(AlertScope.of({"v0"}), AT) as tx:
            assert tx is not None
            assert tx.records == {}
