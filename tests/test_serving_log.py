"""A model's serving log, judged by the engine that holds it in one statement: every field of the
observation equals a plain-Python truth of the same log (tests/serving_log_fixtures.py) on
Parquet files written as Feast writes them, a DuckDB file and PostgreSQL; a window without
requests, a missing column, a log without statuses and SQLite are clear outcomes; and
`featmon check` judges a model over a Parquet serving log end to end."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from checks.observation import NO_AGES
from checks.result import Status
from checks.served import ServedModel, plan_model
from checks.served_judge import judge
from checks.stats import nearest_rank
from monitor.cli.main import main
from monitor.config import ParquetStoreConfig, SqlStoreConfig
from monitor.errors import QueryFailed, SourceNotFound
from monitor.stores.sql.offline import AggregateStore
from monitor.stores.sql.parquet import ParquetOfflineStore
from monitor.stores.sql.serving_log import quantiles
from monitor.stores.sql.table import SqlOfflineStore
from tests.offline_fixtures import statements
from tests.serving_log_fixtures import (
    REQUESTS,
    SINCE,
    UNTIL,
    arrow_table,
    reference,
    requests,
    served_model,
    write_duckdb,
    write_parquet,
    write_postgres,
)


@dataclass(frozen=True)
class Log:
    """A store holding the planted log, and where the model's `serving_log` finds it."""

    store: AggregateStore
    location: dict[str, str]  # {"path": ...} or {"table": ...}

    def served(self, **log: str | bool) -> ServedModel:
        return served_model({"store": self.store.name, **self.location, **log})


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The store's root; the log is in `logs/fraud/`, as Feast's file destination writes."""
    root = tmp_path_factory.mktemp("lake")
    write_parquet(root / "logs" / "fraud", requests())
    write_parquet(root / "logs" / "plain", requests(), statuses=False)
    return root


def parquet_store(root: Path) -> ParquetOfflineStore:
    return ParquetOfflineStore("lake", ParquetStoreConfig(type="parquet", root=str(root)))


def sql_store(url: str, timezone: str = "UTC") -> SqlOfflineStore:
    config = SqlStoreConfig.model_validate({"type": "sql", "url": url, "timezone": timezone})
    return SqlOfflineStore("warehouse", config)


def _parquet(request: pytest.FixtureRequest) -> Log:
    return Log(parquet_store(request.getfixturevalue("lake")), {"path": "logs/fraud"})


def _duckdb(request: pytest.FixtureRequest) -> Log:
    lake: Path = request.getfixturevalue("lake")
    tmp: Path = request.getfixturevalue("tmp_path")
    url = write_duckdb(tmp / "warehouse.duckdb", lake / "logs" / "fraud")
    return Log(sql_store(url), {"table": "fraud_log"})


def _postgres(request: pytest.FixtureRequest) -> Log:
    schema: str = request.getfixturevalue("pg_schema")
    pg_url: str = request.getfixturevalue("pg_url")
    table = write_postgres(pg_url, schema, requests())
    return Log(sql_store(pg_url, "Europe/Berlin"), {"table": table})


ENGINES: dict[str, Callable[[pytest.FixtureRequest], Log]] = {
    "parquet": _parquet,
    "duckdb": _duckdb,
    "postgres": _postgres,
}


@pytest.fixture(
    params=[
        pytest.param(name, marks=pytest.mark.postgres) if name == "postgres" else name
        for name in ENGINES
    ]
)
def log(request: pytest.FixtureRequest) -> Iterator[Log]:
    opened = ENGINES[request.param](request)
    try:
        yield opened
    finally:
        opened.store.close()


# --- the judgment ------------------------------------------------------------------------------


def test_every_field_equals_the_truth_of_the_log(log: Log) -> None:
    """Requests, coverage, each view's and feature's misses, the three kinds of age quantiles
    and the disagreeing statuses are exactly what a plain-Python judgment of the log gives."""
    served = log.served()
    assert served.model.serving_log is not None

    observation = log.store.measure_serving_log(served, served.model.serving_log, SINCE, UNTIL)

    truth = replace(reference(served, requests(), statuses=True), store=log.store.name)
    assert observation == truth


def test_the_planted_faults_are_all_there(log: Log) -> None:
    """The truth is not trivial: every reason, status lies and ages of each kind occur."""
    served = log.served()
    assert served.model.serving_log is not None

    observation = log.store.measure_serving_log(served, served.model.serving_log, SINCE, UNTIL)

    assert observation.requests == REQUESTS
    assert 0 < observation.covered < REQUESTS * 0.8
    reasons = {r: n for v in observation.views.values() for r, n in v.reasons.items() if n}
    assert set(reasons) == {"absent", "null", "stale", "future"}
    assert all(0 < v.only < v.uncovered for v in observation.views.values())
    assert observation.status_disagreements is not None
    assert observation.status_disagreements > 0
    assert observation.request_ages.count == REQUESTS
    assert observation.value_ages.max is not None
    assert 7 * 3600 <= observation.value_ages.max < 7 * 3600 + 1  # the stale user values


def test_the_log_is_read_in_one_statement(log: Log) -> None:
    """Judging a model sends one statement that reads the log; the others only look the log
    up in the catalog (and start the read-only transaction)."""
    served = log.served()
    assert served.model.serving_log is not None

    with statements(log.store.engine) as sent:
        log.store.measure_serving_log(served, served.model.serving_log, SINCE, UNTIL)

    reads = [
        s
        for s in sent
        if not s.startswith("DESCRIBE")
        and re.search(r"\bFROM\s+(read_parquet\(|[\w\".]*fraud_log\b)", s)
    ]
    assert len(reads) == 1
    assert reads[0].lstrip().startswith("WITH judged AS MATERIALIZED")
    others = [s for s in sent if s not in reads]
    assert all(
        re.match(r"\s*(SET|SELECT pg_catalog|DESCRIBE|SELECT\b.*information_schema)", s, re.DOTALL)
        for s in others
    ), others


def test_a_window_without_requests_counts_nothing(log: Log) -> None:
    """A window before any request counts nothing and has no ages (its checks error: below)."""
    served = log.served()
    assert served.model.serving_log is not None
    day_before = SINCE - timedelta(days=2), SINCE - timedelta(days=1)

    observation = log.store.measure_serving_log(served, served.model.serving_log, *day_before)

    assert (observation.requests, observation.covered) == (0, 0)
    assert observation.value_ages == observation.request_ages == NO_AGES
    assert {v.uncovered for v in observation.views.values()} == {0}
    assert observation.status_disagreements == 0


def test_a_log_without_statuses_counts_no_disagreement(lake: Path) -> None:
    """`statuses: false` judges a log without `__status` columns, and counts nothing there."""
    store = parquet_store(lake)
    served = served_model({"store": "lake", "path": "logs/plain", "statuses": False})
    assert served.model.serving_log is not None
    try:
        observation = store.measure_serving_log(served, served.model.serving_log, SINCE, UNTIL)
    finally:
        store.close()

    truth = reference(served, requests(), statuses=False)
    assert observation == replace(truth, store="lake")
    assert observation.status_disagreements is None


def test_a_missing_column_is_source_not_found_naming_model_log_and_column(log: Log) -> None:
    """A log without a column the judgment needs is refused before any query, naming the
    store, the model, the log and every missing column."""
    served = log.served(log_timestamp="logged_at")
    assert served.model.serving_log is not None

    with statements(log.store.engine) as sent, pytest.raises(SourceNotFound) as raised:
        log.store.measure_serving_log(served, served.model.serving_log, SINCE, UNTIL)

    location = next(iter(log.location.values()))
    assert raised.value.store == log.store.name
    assert raised.value.detail.startswith("the serving log of model fraud (")
    assert location in raised.value.detail
    assert raised.value.detail.endswith("has no column 'logged_at'")
    assert not [s for s in sent if "judged" in s]


def test_statuses_expected_but_absent_name_each_status_column(lake: Path) -> None:
    """A log without `__status` columns, not declared `statuses: false`, names them all."""
    store = parquet_store(lake)
    served = served_model({"store": "lake", "path": "logs/plain"})
    assert served.model.serving_log is not None
    try:
        with pytest.raises(SourceNotFound, match="has no column") as raised:
            store.measure_serving_log(served, served.model.serving_log, SINCE, UNTIL)
    finally:
        store.close()

    named = re.findall(r"'(\w+__status)'", raised.value.detail)
    assert named == [
        "user_stats__revenue__status",
        "user_stats__orders__status",
        "merchant_stats__risk__status",
        "pair_stats__seen__status",
    ]


def test_a_value_time_of_the_wrong_kind_is_a_failed_query_naming_it(tmp_path: Path) -> None:
    """A value time kept as text is refused, saying what was expected and found."""
    table = arrow_table(requests())
    position = table.schema.get_field_index("merchant_stats__risk__timestamp")
    text = table.column(position).cast("string")
    table = table.set_column(position, "merchant_stats__risk__timestamp", text)
    (tmp_path / "log").mkdir()
    pq.write_table(table, tmp_path / "log" / "part-0.parquet")
    store = parquet_store(tmp_path)
    served = served_model({"store": "lake", "path": "log"})
    assert served.model.serving_log is not None
    try:
        with pytest.raises(QueryFailed) as raised:
            store.measure_serving_log(served, served.model.serving_log, SINCE, UNTIL)
    finally:
        store.close()

    assert raised.value.detail.endswith(
        "has columns of the wrong kind: 'merchant_stats__risk__timestamp' "
        "(expected timestamp, found string)"
    )


def test_a_log_that_does_not_exist_is_source_not_found(log: Log) -> None:
    """A table or path that is not there is `SourceNotFound` naming it."""
    served = log.served(**dict.fromkeys(log.location, "no_such_log"))
    assert served.model.serving_log is not None

    with pytest.raises(SourceNotFound, match="no_such_log"):
        log.store.measure_serving_log(served, served.model.serving_log, SINCE, UNTIL)


def test_sqlite_is_refused_saying_which_engines_judge_serving_logs(tmp_path: Path) -> None:
    """SQLite has no discrete percentile: the judgment is refused, not approximated, before
    any connection."""
    store = sql_store(f"sqlite:///{tmp_path / 'log.db'}")
    served = served_model({"store": "warehouse", "table": "fraud_log"})
    assert served.model.serving_log is not None
    try:
        with pytest.raises(QueryFailed, match="need PostgreSQL or DuckDB") as raised:
            store.measure_serving_log(served, served.model.serving_log, SINCE, UNTIL)
    finally:
        store.close()

    assert "sqlite has none" in raised.value.detail
    assert not (tmp_path / "log.db").exists()


def test_judging_logs_one_line_with_store_model_log_requests_and_time(
    log: Log, caplog: pytest.LogCaptureFixture
) -> None:
    """One INFO line: the store, how many requests, the model, the log and how long."""
    served = log.served()
    assert served.model.serving_log is not None

    with caplog.at_level(logging.INFO, logger="monitor.stores.sql"):
        log.store.measure_serving_log(served, served.model.serving_log, SINCE, UNTIL)

    (line,) = [r.getMessage() for r in caplog.records]
    location = re.escape(next(iter(log.location.values())))
    assert re.fullmatch(
        rf"store {log.store.name}: judged {REQUESTS} requests of model fraud in "
        rf"{location} in [\d.]+ ms",
        line,
    )


# --- the engines' percentiles are nearest rank ---------------------------------------------------


@pytest.mark.parametrize(
    "dialect", ["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_the_engines_quantiles_are_nearest_rank(
    dialect: str, request: pytest.FixtureRequest
) -> None:
    """For every count of 1 to 120 distinct values, each engine's quantiles are the
    nearest-rank quantiles of `checks.stats` (p50, p90, p99, max)."""
    url = "duckdb:///:memory:" if dialect == "duckdb" else request.getfixturevalue("pg_url")
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            for n in range(1, 121):
                numbers = [(k * 37) % 1009 for k in range(n)]
                rows = sa.values(sa.column("x", sa.BigInteger()), name="v").data(
                    [(x,) for x in numbers]
                )
                found = conn.execute(sa.select(quantiles(rows.c.x))).scalar_one()
                ordered = sorted(numbers)
                expected = [nearest_rank(ordered, q) for q in (0.5, 0.9, 0.99, 1.0)]
                assert [int(x) for x in found] == expected, n
    finally:
        engine.dispose()


# --- featmon check ------------------------------------------------------------------------------

CHECK_FILE = """\
feature_views:
  - name: user_stats
    entity: user_id
    ttl: 1d
    features: {revenue: float, orders: int64}
  - name: merchant_stats
    entity: merchant_id
    ttl: 2h
    features: {risk: float}
  - name: pair_stats
    entity: [user_id, merchant_id]
    ttl: 1d
    features: {seen: int64}
models:
  - name: fraud
    features: [user_stats, "merchant_stats:risk", pair_stats]
    max_age: {user_stats: 6h}
    max_future: 5s
    owner: risk-team
    serving_log: {store: lake, path: logs/fraud, window: 1h}
    checks:
      - {kind: coverage, min: 0.95, severity: P1}
      - {kind: freshness, quantile: p50, max: 2h}
      - {kind: null_rate, feature: "user_stats:revenue", max: 0.5}
"""


def test_featmon_check_judges_a_model_over_a_parquet_serving_log(
    tmp_path: Path, lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`featmon check` judges the log and reports each model check in its JSON with the
    truth's numbers: coverage fails, freshness fails for its future values, the null rate
    passes; exit 2."""
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "fraud.yaml").write_text(CHECK_FILE, encoding="utf-8")
    config = tmp_path / "config.yaml"
    config.write_text(
        f"stores:\n  lake: {{type: parquet, root: '{lake}'}}\n"
        "checks: checks/*.yaml\nreports: {dir: reports}\n",
        encoding="utf-8",
    )
    served = served_model({"store": "lake", "path": "logs/fraud"})
    truth = reference(served, requests(), statuses=True)

    now = UNTIL.isoformat()
    # --no-state: the state database keeps no model results yet
    code = main(["check", "--config", str(config), "--now", now, "--format", "json", "--no-state"])

    results = {r["check"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    assert code == 2
    assert set(results) == {
        "fraud.coverage",
        "fraud.freshness",
        "fraud.null_rate.user_stats.revenue",
    }
    coverage = results["fraud.coverage"]
    assert (coverage["status"], coverage["model"], coverage["feature_view"]) == (
        "fail",
        "fraud",
        None,
    )
    assert coverage["value"] == truth.covered / truth.requests
    assert coverage["details"]["requests"] == REQUESTS
    assert coverage["labels"]["owner"] == "risk-team"
    freshness = results["fraud.freshness"]
    future = sum(misses.future for misses in truth.features.values())
    assert (freshness["value"], freshness["details"]["future"]) == (truth.value_ages.p50, future)
    assert freshness["status"] == "fail"  # within 2h, but values came from the future
    null_rate = results["fraud.null_rate.user_stats.revenue"]
    revenue = truth.features["user_stats:revenue"]
    assert null_rate["value"] == (revenue.absent + revenue.null) / REQUESTS
    assert null_rate["status"] == "pass"


def test_judged_checks_error_on_an_empty_window(lake: Path) -> None:
    """No requests in the window: every planned check of the model is an `error`."""
    store = parquet_store(lake)
    served = served_model(
        {"store": "lake", "path": "logs/fraud"}, checks=[{"kind": "coverage", "min": 0.9}]
    )
    assert served.model.serving_log is not None
    planned = plan_model(served)
    try:
        observation = store.measure_serving_log(
            served, served.model.serving_log, SINCE - timedelta(days=2), SINCE - timedelta(days=1)
        )
    finally:
        store.close()

    (result,) = [judge(p, observation) for p in planned]
    assert result.status is Status.ERROR
    assert "no requests in the serving log" in str(result.details)
