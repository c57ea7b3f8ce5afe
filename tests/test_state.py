"""The state database against a real SQLite file and a real PostgreSQL: one contract suite run
on both (`backend`), plus what only one of them has (SQLite's file, WAL and busy timeout).

On PostgreSQL each test gets a fresh schema of the session's database, and its connections use
the Asia/Kolkata time zone so that UTC normalisation is tested, not assumed.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType

import pytest
import sqlalchemy as sa

from checks.observation import Column
from checks.result import (
    CheckResult,
    ErrorDetails,
    FreshnessDetails,
    Interval,
    NullRateDetails,
    RunResult,
    SampleInfo,
    Status,
    Threshold,
)
from checks.serde import to_object
from monitor.errors import MonitorError
from monitor.state import (
    MIGRATIONS,
    Baseline,
    Migration,
    SchemaTooNew,
    StateError,
    StateStore,
    StoredResult,
)
from monitor.state.schema import metadata

pytestmark = pytest.mark.every_state_backend  # tests/conftest.py: SQLite and PostgreSQL

T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
LATEST = len(MIGRATIONS)  # the schema version this featmon migrates to
NEXT = LATEST + 1  # a version added by a test
ALL = list(range(1, NEXT))
MINUTE = timedelta(minutes=1)
FRESHNESS = "user_stats.freshness@online"
NULLS = "user_stats.null_rate.revenue@online"
ITEM_FRESHNESS = "item_stats.freshness@online"

# -- builders -------------------------------------------------------------------------------------


def freshness(
    value: float | None = 120.0, status: Status = Status.PASS, check: str = FRESHNESS
) -> CheckResult:
    view = check.split(".", 1)[0]
    return CheckResult(
        check=check,
        kind="freshness",
        feature_view=view,
        feature=None,
        store="redis_prod",
        target="online",
        status=status,
        severity="P1",
        value=value,
        threshold=Threshold("max", 3600.0, 1800.0, "seconds"),
        sample_size=2000,
        details=FreshnessDetails(
            p50=30.0, p90=90.5, p99=value, max=4000.25, sample=SampleInfo("offline", 2000, 1990, 3)
        ),
        labels={"team": "growth", "tier": "gold"},
    )


def null_rate(value: float = 0.004, status: Status = Status.PASS) -> CheckResult:
    return CheckResult(
        check=NULLS,
        kind="null_rate",
        feature_view="user_stats",
        feature="revenue",
        store="redis_prod",
        target="online",
        status=status,
        severity="P2",
        value=value,
        threshold=Threshold("max", 0.01, 0.005, "ratio"),
        sample_size=2000,
        details=NullRateDetails(
            nulls=8, rows=2000, interval=Interval(0.002, 0.0079), absent=1, sample=None
        ),
    )


def errored(check: str = ITEM_FRESHNESS) -> CheckResult:
    return replace(
        freshness(None, Status.ERROR, check),
        store="warehouse",
        target="offline",
        threshold=Threshold("max", 3600.0, None, "seconds"),
        sample_size=None,
        details=ErrorDetails("store 'warehouse': connection refused"),
        labels=MappingProxyType({}),
    )


def a_run(run_id: str, scheduled_at: datetime, *results: CheckResult) -> RunResult:
    return RunResult(
        run_id=run_id,
        scheduled_at=scheduled_at,
        started_at=scheduled_at + timedelta(seconds=1, microseconds=250_000),
        finished_at=scheduled_at + timedelta(seconds=3, microseconds=750_001),
        results=results,
    )


def without_run(shown: Mapping[str, object]) -> dict[str, object]:
    return {k: v for k, v in shown.items() if k not in ("run_id", "scheduled_at")}


def version_two(upgrade: Callable[[sa.Connection], None] | None = None) -> list[Migration]:
    """The known migrations plus a version NEXT that adds an `alert_states` table."""

    def add_alert_states(conn: sa.Connection) -> None:
        meta = sa.MetaData()
        sa.Table(
            "alert_states",
            meta,
            sa.Column("identity", sa.Text, primary_key=True),
            sa.Column("state", sa.Text, nullable=False),
        )
        meta.create_all(conn)
        if upgrade is not None:
            upgrade(conn)

    return [*MIGRATIONS, Migration(NEXT, "alert states", add_alert_states)]


def migrate_together(
    url: str, count: int, migrations: Sequence[Migration]
) -> list[list[int] | BaseException]:
    """What `count` stores of their own, calling `migrate()` at the same moment, returned."""
    stores = [StateStore(url, migrations=migrations) for _ in range(count)]
    start = threading.Barrier(count)
    outcomes: list[list[int] | BaseException] = []

    def migrate(state: StateStore) -> None:
        start.wait()
        try:
            outcomes.append(state.migrate())
        except BaseException as exc:  # noqa: BLE001 - the caller asserts there is none
            outcomes.append(exc)

    threads = [threading.Thread(target=migrate, args=(state,)) for state in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for state in stores:
        state.close()
    return outcomes


@contextlib.contextmanager
def engine_of(url: str) -> Iterator[sa.Engine]:
    """A plain engine, to look at the database without featmon."""
    engine = sa.create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    with engine_of(url) as engine:
        return set(sa.inspect(engine).get_table_names())


def applied_versions(url: str) -> list[int]:
    with engine_of(url) as engine, engine.connect() as conn:
        found = conn.exec_driver_sql("SELECT version FROM featmon_schema_version ORDER BY 1")
        return [int(v) for (v,) in found]


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
def url(state_url: str) -> str:
    """The empty state database of each backend (tests/conftest.py)."""
    return state_url


@pytest.fixture
def store(state: StateStore) -> StateStore:
    """That database, migrated."""
    return state


# -- migrations -----------------------------------------------------------------------------------


def test_migrate_creates_every_table_on_an_empty_database(url: str) -> None:
    with StateStore(url) as state:
        assert state.version() == 0
        assert state.migrate() == ALL
        assert state.version() == LATEST
    assert table_names(url) >= {
        "featmon_schema_version",
        "runs",
        "results",
        "latest_results",
        "schema_baselines",
    }


@pytest.mark.usefixtures("store")
def test_a_migrated_database_has_exactly_the_columns_and_indexes_the_queries_expect(
    url: str,
) -> None:
    """The frozen DDL of the migrations and the tables of `monitor.state.schema` agree."""
    with engine_of(url) as engine:
        inspector = sa.inspect(engine)
        for table in metadata.sorted_tables:
            found = {c["name"]: c["nullable"] for c in inspector.get_columns(table.name)}
            assert found == {c.name: c.nullable for c in table.columns}, table.name
            pk = inspector.get_pk_constraint(table.name)["constrained_columns"]
            assert pk == [c.name for c in table.primary_key], table.name
            indexes = {
                (i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(table.name)
            }
            assert indexes == {(i.name, tuple(c.name for c in i.columns)) for i in table.indexes}
            keys = {
                (tuple(k["constrained_columns"]), k["referred_table"], k["options"].get("ondelete"))
                for k in inspector.get_foreign_keys(table.name)
            }
            assert keys == {
                (tuple(k.column_keys), k.referred_table.name, k.ondelete)
                for k in table.foreign_key_constraints
            }, table.name


def test_migrating_a_current_database_again_applies_nothing(url: str) -> None:
    with StateStore(url) as state:
        state.migrate()
        assert state.migrate() == []
    with StateStore(url) as again:
        assert again.migrate() == []
    assert applied_versions(url) == ALL


def test_a_new_migration_adds_its_table_and_keeps_the_recorded_data(url: str) -> None:
    with StateStore(url) as v1:
        v1.migrate()
        v1.record_run(a_run("r1", T0, freshness()))
    with StateStore(url, migrations=version_two()) as v2:
        assert v2.migrate() == [NEXT]
        assert v2.version() == NEXT
        assert [r.check for r in v2.results(run_id="r1")] == [FRESHNESS]
    assert "alert_states" in table_names(url)
    assert applied_versions(url) == [*ALL, NEXT]


def test_a_database_migrated_by_a_newer_featmon_is_refused_and_left_alone(url: str) -> None:
    with StateStore(url, migrations=version_two()) as newer:
        newer.migrate()
    with StateStore(url) as older, pytest.raises(SchemaTooNew) as raised:
        older.migrate()
    assert (raised.value.found, raised.value.known) == (NEXT, LATEST)
    assert "newer featmon" in str(raised.value)
    assert applied_versions(url) == [*ALL, NEXT]


def test_a_failing_migration_leaves_the_schema_at_the_previous_version(url: str) -> None:
    """DDL is transactional on both backends: the table the new version created is rolled back."""

    def fail(conn: sa.Connection) -> None:
        conn.exec_driver_sql("SELECT no_such_column FROM runs")

    with StateStore(url) as v1:
        v1.migrate()
    with StateStore(url, migrations=version_two(fail)) as v2, pytest.raises(StateError):
        v2.migrate()
    assert "alert_states" not in table_names(url)
    assert applied_versions(url) == ALL


def test_concurrent_migrators_apply_each_version_exactly_once(url: str) -> None:
    """Four migrators with engines of their own, as four processes starting at once would have:
    one migrates (slowly), the others wait for it and find the schema current. Without the
    lock a second CREATE TABLE or version row would fail."""

    def slowly(_conn: sa.Connection) -> None:
        time.sleep(0.3)

    outcomes = migrate_together(url, 4, version_two(slowly))
    assert sorted(v for applied in outcomes if isinstance(applied, list) for v in applied) == [
        *ALL,
        NEXT,
    ]
    assert [o for o in outcomes if isinstance(o, BaseException)] == []
    assert applied_versions(url) == [*ALL, NEXT]


def test_migrations_out_of_order_are_a_programming_error(url: str) -> None:
    backwards = [Migration(2, "two", lambda _c: None), Migration(1, "one", lambda _c: None)]
    with StateStore(url, migrations=backwards) as state, pytest.raises(ValueError, match="1, 2"):
        state.migrate()


# -- errors ---------------------------------------------------------------------------------------


def test_using_the_store_before_migrating_is_a_state_error(url: str) -> None:
    with StateStore(url) as state, pytest.raises(StateError, match="reading runs failed"):
        state.runs()


def test_an_unreachable_database_is_a_state_error_that_hides_the_password() -> None:
    url = "postgresql://featmon:s3cret-pw@127.0.0.1:1/state"
    with StateStore(url) as state, pytest.raises(StateError) as raised:
        state.migrate()
    assert isinstance(raised.value, MonitorError)
    assert "s3cret-pw" not in str(raised.value)
    assert "s3cret-pw" not in str(raised.value.__cause__)  # what a logged traceback shows
    assert "postgresql://featmon:***@127.0.0.1:1/state" in str(raised.value)


def test_a_url_that_is_neither_sqlite_nor_postgresql_is_refused() -> None:
    with pytest.raises(StateError, match="expected a sqlite or postgresql URL, found 'mysql'"):
        StateStore("mysql://featmon:pw@db/state")


def test_an_in_memory_sqlite_database_is_refused() -> None:
    with pytest.raises(StateError, match="in-memory"):
        StateStore("sqlite://")


def test_a_naive_time_is_refused_before_anything_is_written(store: StateStore) -> None:
    naive = T0.replace(tzinfo=None)
    with pytest.raises(ValueError, match="timezone-aware scheduled_at"):
        store.record_run(a_run("r1", naive, freshness()))
    with pytest.raises(ValueError, match="timezone-aware since"):
        store.results(since=naive)
    assert store.runs() == []


@pytest.mark.parametrize("limit", [0, -1, 10_001])
def test_a_limit_outside_1_to_10000_is_refused(store: StateStore, limit: int) -> None:
    with pytest.raises(ValueError, match="expected a limit from 1 to 10000"):
        store.results(limit=limit)


# -- SQLite's file --------------------------------------------------------------------------------


def test_sqlite_creates_the_directory_and_keeps_the_file_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "state.db"
    with StateStore(f"sqlite:///{path}") as state:
        state.migrate()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_sqlite_opened_for_the_first_time_by_several_processes_at_once_does_not_fail(
    tmp_path: Path,
) -> None:
    """Switching a new file to WAL mode races with the first migration's commit, which SQLite
    reports as "locked" at once, whatever the busy timeout; the race is short, hence 20 files."""
    outcomes = [
        outcome
        for attempt in range(20)
        for outcome in migrate_together(f"sqlite:///{tmp_path / f'{attempt}.db'}", 4, MIGRATIONS)
    ]
    assert [o for o in outcomes if isinstance(o, BaseException)] == []


def test_sqlite_writer_waits_for_a_held_lock_instead_of_failing(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with StateStore(f"sqlite:///{path}") as state:
        state.migrate()
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")  # another process is writing
        threading.Timer(0.5, other.commit).start()
        started = time.monotonic()
        state.record_run(a_run("r1", T0, freshness()))
        waited = time.monotonic() - started
        other.close()
        assert [r.run_id for r in state.runs()] == ["r1"]
    assert waited >= 0.4


def test_sqlite_enforces_foreign_keys(tmp_path: Path) -> None:
    """A row pointing at a result that does not exist is refused, although SQLite leaves
    foreign keys off unless each connection turns them on (here: a migration's insert)."""

    def insert_orphan(conn: sa.Connection) -> None:
        conn.exec_driver_sql(
            "INSERT INTO latest_results (check_id, run_id, seq, scheduled_at) "
            "VALUES ('c', 'no-such-run', 0, '2024-06-01 12:00:00.000000')"
        )

    orphan = Migration(NEXT, "an orphan pointer", insert_orphan)
    with (
        StateStore(f"sqlite:///{tmp_path / 'state.db'}", migrations=[*MIGRATIONS, orphan]) as state,
        pytest.raises(StateError, match="FOREIGN KEY constraint failed"),
    ):
        state.migrate()


# -- runs and results -----------------------------------------------------------------------------


def test_a_recorded_run_reads_back_with_exact_times_duration_and_counts(store: StateStore) -> None:
    run = a_run("r1", T0, freshness(), null_rate(0.02, Status.FAIL), errored())
    store.record_run(run)
    stored = store.run("r1")
    assert stored is not None
    assert stored.as_json() == {
        "run_id": "r1",
        "feature_view": None,  # two views
        "scheduled_at": "2024-06-01T12:00:00Z",
        "started_at": "2024-06-01T12:00:01.250000Z",
        "finished_at": "2024-06-01T12:00:03.750001Z",
        "duration_seconds": 2.500001,
        "status": "error",
        "counts": {"pass": 1, "warn": 0, "fail": 1, "error": 1},
    }
    assert (stored.scheduled_at, stored.started_at) == (run.scheduled_at, run.started_at)


def test_recorded_results_read_back_exactly_in_declaration_order(store: StateStore) -> None:
    run = a_run("r1", T0, freshness(), null_rate(0.02, Status.FAIL), errored())
    store.record_run(run)
    stored = store.results(run_id="r1")
    assert [without_run(s.as_json()) for s in stored] == [to_object(r) for r in run.results]
    assert {(s.run_id, s.scheduled_at) for s in stored} == {("r1", T0)}


def test_times_come_back_in_utc_whatever_zone_they_went_in(store: StateStore) -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    local = datetime(2024, 6, 1, 17, 30, 0, 123_456, tzinfo=india)
    store.record_run(a_run("r1", local, freshness()))
    (stored,) = store.runs()
    assert stored.scheduled_at.tzinfo is UTC
    assert stored.scheduled_at == datetime(2024, 6, 1, 12, 0, 0, 123_456, tzinfo=UTC)
    assert store.results(since=local)[0].scheduled_at.tzinfo is UTC


def test_a_run_of_a_single_view_is_stored_under_that_view(store: StateStore) -> None:
    store.record_run(a_run("r1", T0, freshness(), null_rate()))
    stored = store.run("r1")
    assert stored is not None
    assert stored.feature_view == "user_stats"


def test_recording_a_run_twice_stores_it_once(store: StateStore) -> None:
    run = a_run("r1", T0, freshness(), null_rate())
    store.record_run(run)
    store.record_run(run)
    assert [r.run_id for r in store.runs()] == ["r1"]
    assert len(store.results()) == 2


def test_the_first_record_of_a_run_id_wins(store: StateStore) -> None:
    store.record_run(a_run("r1", T0, freshness(100.0)))
    store.record_run(a_run("r1", T0, freshness(999.0), null_rate()))
    assert [(r.check, r.value) for r in store.results()] == [(FRESHNESS, 100.0)]


def test_a_run_without_results_is_recorded_as_passing(store: StateStore) -> None:
    store.record_run(a_run("r1", T0))
    stored = store.run("r1")
    assert stored is not None
    assert (stored.status, stored.counts.total, stored.feature_view) == (Status.PASS, 0, None)


def test_nan_becomes_null_and_infinity_is_kept(store: StateStore) -> None:
    """JSON has no NaN or infinity: inside details they become null."""
    store.record_run(a_run("r1", T0, freshness(math.nan), null_rate(math.inf, Status.FAIL)))
    nan, inf = store.results(run_id="r1")
    assert nan.value is None
    assert nan.details["p99"] is None
    assert inf.value == math.inf


def test_runs_are_newest_first_limited_and_filtered_by_since(store: StateStore) -> None:
    for i in (2, 0, 3, 1):
        store.record_run(a_run(f"r{i}", T0 + i * MINUTE, freshness()))
    assert [r.run_id for r in store.runs()] == ["r3", "r2", "r1", "r0"]
    assert [r.run_id for r in store.runs(limit=2)] == ["r3", "r2"]
    assert [r.run_id for r in store.runs(since=T0 + MINUTE)] == ["r3", "r2", "r1"]
    assert store.run("r9") is None


# -- history --------------------------------------------------------------------------------------


def test_history_is_newest_first_with_exact_values_and_limited(store: StateStore) -> None:
    for i in (3, 0, 4, 1, 2):  # recorded out of order
        status = Status.FAIL if i == 4 else Status.PASS
        store.record_run(a_run(f"r{i}", T0 + i * MINUTE, freshness(100.0 + i, status)))
    points = store.history(FRESHNESS, limit=3)
    assert [(p.run_id, p.scheduled_at, p.value, p.status) for p in points] == [
        ("r4", T0 + 4 * MINUTE, 104.0, Status.FAIL),
        ("r3", T0 + 3 * MINUTE, 103.0, Status.PASS),
        ("r2", T0 + 2 * MINUTE, 102.0, Status.PASS),
    ]
    assert len(store.history(FRESHNESS)) == 5


def test_history_holds_only_the_asked_check(store: StateStore) -> None:
    store.record_run(a_run("r1", T0, freshness(), null_rate(0.003), errored()))
    assert [(p.run_id, p.value) for p in store.history(NULLS)] == [("r1", 0.003)]
    assert store.history("no.such.check") == []


def test_history_until_stops_at_the_run(store: StateStore) -> None:
    """`history(until=...)` gives the values up to and including that time, newest first."""
    for i in range(3):
        store.record_run(a_run(f"r{i}", T0 + i * MINUTE, freshness(100.0 + i)))
    points = store.history(FRESHNESS, 10, until=T0 + MINUTE)
    assert [p.run_id for p in points] == ["r1", "r0"]


# -- results() filters ----------------------------------------------------------------------------


@pytest.fixture
def three_runs(store: StateStore) -> StateStore:
    """r0, r1, r2 a minute apart; each: user_stats freshness and null rate, item_stats error.
    r1's freshness warns, r2's null rate fails."""
    store.record_run(a_run("r0", T0, freshness(), null_rate(), errored()))
    store.record_run(
        a_run("r1", T0 + MINUTE, freshness(2000.0, Status.WARN), null_rate(), errored())
    )
    store.record_run(
        a_run("r2", T0 + 2 * MINUTE, freshness(), null_rate(0.2, Status.FAIL), errored())
    )
    return store


F, N, E = FRESHNESS, NULLS, ITEM_FRESHNESS
Query = Callable[[StateStore], list[StoredResult]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            lambda s: s.results(limit=7),
            [("r2", F), ("r2", N), ("r2", E), ("r1", F), ("r1", N), ("r1", E), ("r0", F)],
        ),
        (lambda s: s.results(view="item_stats"), [("r2", E), ("r1", E), ("r0", E)]),
        (lambda s: s.results(check=N), [("r2", N), ("r1", N), ("r0", N)]),
        (lambda s: s.results(check=F, since=T0 + MINUTE), [("r2", F), ("r1", F)]),
        (lambda s: s.results(check=F, until=T0 + MINUTE), [("r0", F)]),
        (lambda s: s.results(status=Status.WARN), [("r1", F)]),
        (lambda s: s.results(status=Status.FAIL, view="user_stats"), [("r2", N)]),
        (lambda s: s.results(status=Status.ERROR, since=T0 + MINUTE, limit=1), [("r2", E)]),
        (lambda s: s.results(run_id="r1", view="user_stats"), [("r1", F), ("r1", N)]),
        (lambda s: s.results(view="user_stats", check=E), []),
    ],
    ids=[
        "limit",
        "view",
        "check",
        "since-inclusive",
        "until-exclusive",
        "status",
        "status-and-view",
        "status-since-limit",
        "run-and-view",
        "disjoint",
    ],
)
def test_results_match_every_filter_given_newest_first(
    three_runs: StateStore, query: Query, expected: list[tuple[str, str]]
) -> None:
    assert [(r.run_id, r.check) for r in query(three_runs)] == expected


# -- latest_by_check ------------------------------------------------------------------------------


def test_latest_by_check_takes_the_newest_run_even_when_recorded_last(store: StateStore) -> None:
    store.record_run(a_run("r2", T0 + 2 * MINUTE, freshness(202.0), null_rate(0.002)))
    store.record_run(a_run("r1", T0 + MINUTE, freshness(101.0), null_rate(0.001), errored()))
    latest = store.latest_by_check()
    assert [(r.check, r.run_id, r.value) for r in latest] == [
        (ITEM_FRESHNESS, "r1", None),  # no newer run has it: still shown
        (FRESHNESS, "r2", 202.0),
        (NULLS, "r2", 0.002),
    ]
    assert latest[1].as_json() == {"run_id": "r2", "scheduled_at": "2024-06-01T12:02:00Z"} | (
        to_object(freshness(202.0))
    )


def test_latest_by_check_breaks_a_tie_of_scheduled_times_by_run_id(store: StateStore) -> None:
    store.record_run(a_run("r-b", T0, freshness(2.0)))
    store.record_run(a_run("r-a", T0, freshness(1.0)))
    assert [(r.run_id, r.value) for r in store.latest_by_check()] == [("r-b", 2.0)]


# -- baselines ------------------------------------------------------------------------------------

COLUMNS = (
    Column("user_id", "int", "BIGINT"),
    Column("revenue", "float", "DOUBLE PRECISION"),
    Column("event_timestamp", "timestamp", "TIMESTAMP WITH TIME ZONE"),
)


def a_baseline(captured_at: datetime, columns: tuple[Column, ...] = COLUMNS) -> Baseline:
    return Baseline(
        feature_view="user_stats",
        store="warehouse",
        source="features.user_stats",
        columns=columns,
        captured_at=captured_at,
        accepted_by="ana@example.com",
        comment="revenue became a double",
    )


def test_a_saved_baseline_reads_back_exactly(store: StateStore) -> None:
    baseline = a_baseline(T0)
    store.save_baseline(baseline)
    found = store.baseline("user_stats", "warehouse")
    assert found == baseline
    assert found is not None
    assert found.captured_at.tzinfo is UTC


def test_the_newest_baseline_is_the_one_in_force(store: StateStore) -> None:
    store.save_baseline(a_baseline(T0 + MINUTE, COLUMNS[:2]))
    store.save_baseline(a_baseline(T0, COLUMNS))  # older, saved later
    found = store.baseline("user_stats", "warehouse")
    assert found is not None
    assert found.columns == COLUMNS[:2]


def test_a_view_or_store_without_a_baseline_has_none(store: StateStore) -> None:
    store.save_baseline(a_baseline(T0))
    assert store.baseline("user_stats", "lake") is None
    assert store.baseline("item_stats", "warehouse") is None


# -- retention ------------------------------------------------------------------------------------


def test_prune_deletes_exactly_the_runs_before_the_cutoff_and_their_results(
    store: StateStore,
) -> None:
    cutoff = T0 + timedelta(days=30)
    times = {
        "old": T0,
        "just-before": cutoff - timedelta(microseconds=1),
        "at-cutoff": cutoff,
        "new": cutoff + timedelta(days=1),
    }
    for run_id, at in times.items():
        store.record_run(a_run(run_id, at, freshness(), null_rate()))
    assert store.prune(cutoff) == 2
    kept = ["new", "at-cutoff"]
    assert [r.run_id for r in store.runs()] == kept
    assert sorted({r.run_id for r in store.results()}) == sorted(kept)
    assert [p.run_id for p in store.history(FRESHNESS)] == kept
    assert store.prune(cutoff) == 0


def test_prune_in_batches_smaller_than_a_run_still_deletes_every_old_run(
    store: StateStore,
) -> None:
    for i in range(7):
        store.record_run(a_run(f"r{i}", T0 + i * MINUTE, freshness(), null_rate()))
    assert store.prune(T0 + timedelta(days=1), batch_rows=1) == 7
    assert store.runs() == []
    assert store.results() == []


def test_prune_forgets_the_latest_result_of_a_check_that_stopped_running(
    store: StateStore,
) -> None:
    store.record_run(a_run("old", T0, freshness(), errored()))
    store.record_run(a_run("new", T0 + timedelta(days=40), freshness()))
    store.prune(T0 + timedelta(days=30))
    assert [(r.check, r.run_id) for r in store.latest_by_check()] == [(FRESHNESS, "new")]
