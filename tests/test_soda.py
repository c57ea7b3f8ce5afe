"""The `soda` check kind: a Soda Core v4 contract verified on a real PostgreSQL table, one featmon
result per check of the contract.

The planted table `features.user_stats` has 200 rows, k = 1..200: user k % 50, revenue k except
NULL for every tenth row (20 nulls: 10 percent), purchases k % 20 (never null).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from checks.checkfile import CheckFile
from checks.errors import ConfigError
from checks.model import FeatureView
from checks.plan import plan_view, problems_of
from checks.result import CheckResult, ErrorDetails, SodaDetails, Status
from checks.serde import to_object
from monitor.cli import main as cli
from monitor.config import ParquetStoreConfig, SqlStoreConfig
from monitor.loader import load
from monitor.runs.probe import Stores, probe_view
from monitor.stores import soda
from monitor.stores.sql.parquet import ParquetOfflineStore
from monitor.stores.sql.table import SqlOfflineStore

S = datetime(2024, 7, 1, 12, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parent.parent

CONTRACT = """\
checks:
  - row_count:
      threshold:
        must_be_between: {greater_than: 10, less_than: 150}
  - schema:
columns:
  - name: user_id
    data_type: integer
  - name: event_timestamp
  - name: revenue
    checks:
      - missing:
          threshold:
            metric: percent
            must_be_less_than: 20
            additional:
              level: warn
              must_be_less_than: 5
      - invalid:
          qualifier: range
          valid_min: 0
          valid_max: 100
  - name: purchases
    checks:
      - missing:
"""
IDS = [
    "user_stats.soda.row_count@offline",
    "user_stats.soda.schema@offline",
    "user_stats.soda.revenue.missing@offline",
    "user_stats.soda.revenue.invalid.range@offline",
    "user_stats.soda.purchases.missing@offline",
]


def view(checks: list[dict[str, object]], store: str = "warehouse") -> FeatureView:
    location = {"table": "features.user_stats"} if store == "warehouse" else {"path": "x.parquet"}
    return FeatureView.model_validate(
        {
            "name": "user_stats",
            "entity": "user_id",
            "ttl": "1d",
            "features": {"revenue": "float", "purchases": "int"},
            "offline": {"store": store, **location},
            "labels": {"team": "growth"},
            "checks": checks,
        }
    )


SECRET = "pw-never-shown-42"  # trust authentication ignores it; tests look for it


@pytest.fixture(scope="module")
def warehouse_url(pg_url: str) -> str:
    """The planted table in the session's database; the URL carries a password that trust
    authentication ignores, so that tests can look for it in what featmon says."""
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS features")
        conn.exec_driver_sql(
            "CREATE TABLE features.user_stats (user_id int, event_timestamp timestamptz, "
            "revenue float8, purchases int)"
        )
        conn.exec_driver_sql(
            "INSERT INTO features.user_stats SELECT mod(k, 50), "
            "TIMESTAMPTZ '2024-07-01 12:00+00' - k * INTERVAL '1 minute', "
            "CASE WHEN mod(k, 10) = 0 THEN NULL ELSE k END, mod(k, 20) FROM generate_series(1, 200) k"
        )
    engine.dispose()
    return sa.make_url(pg_url).set(password=SECRET).render_as_string(hide_password=False)


def probe(url: str, checks: list[dict[str, object]]) -> dict[str, CheckResult]:
    store = SqlOfflineStore("warehouse", SqlStoreConfig(type="sql", url=url))
    try:
        the_view = view(checks)
        results = probe_view(
            the_view, tuple(plan_view(the_view)), Stores({}, {"warehouse": store}), S
        )
    finally:
        store.close()
    return {r.check: r for r in results}


# --- planning (pure) ----------------------------------------------------------------------------


def test_the_planner_makes_one_result_id_per_check_of_the_contract() -> None:
    planned = plan_view(view([{"kind": "soda", "contract": CONTRACT}]))
    assert [p.id for p in planned] == IDS


def test_a_named_soda_check_prefixes_the_soda_keys_with_its_name() -> None:
    planned = plan_view(view([{"kind": "soda", "name": "contract", "contract": CONTRACT}]))
    assert planned[2].id == "contract.revenue.missing"


def test_a_malformed_contract_is_reported_at_its_line() -> None:
    contract = "dataset: wh/db/features/other\ncolumns: []\nchecks:\n  - row_count\n"
    declared = view([{"kind": "soda", "contract": contract}]).model_dump(mode="json")
    found = problems_of(CheckFile.model_validate({"feature_views": [declared]}))
    messages = [message for _, message in found]
    assert "contract line 4: expected `row_count:`" in messages[0]
    assert "expected the contract's dataset to be the view's offline table" in messages[1]


# --- verification on PostgreSQL -----------------------------------------------------------------


@pytest.mark.postgres
def test_each_soda_check_becomes_a_result_with_status_value_threshold_and_identity(
    warehouse_url: str,
) -> None:
    checks: list[dict[str, object]] = [
        {"kind": "soda", "contract": CONTRACT, "severity": "P2"},
        {"kind": "row_count", "min": 1},
    ]
    results = probe(warehouse_url, checks)
    assert list(results) == [*IDS, "user_stats.row_count@offline"]
    statuses = {check: r.status for check, r in results.items()}
    assert statuses == {
        IDS[0]: Status.FAIL,  # 200 rows, not < 150
        IDS[1]: Status.PASS,
        IDS[2]: Status.WARN,  # 10 percent missing: < 20 passes the fail level, not < 5
        IDS[3]: Status.FAIL,  # revenue 101..199 are above valid_max
        IDS[4]: Status.PASS,
        "user_stats.row_count@offline": Status.PASS,
    }
    missing = results[IDS[2]]
    assert isinstance(missing.details, SodaDetails)
    assert missing.value == 10.0
    assert missing.feature == "revenue"
    assert missing.severity == "P2"
    assert missing.details.threshold == "must be < 20 (warn: must be < 5)"
    assert missing.details.diagnostics["missing_count"] == 20
    assert missing.details.dataset.endswith("/features/user_stats")
    assert missing.threshold.fail == 20.0
    assert missing.threshold.warn == 5.0
    assert dict(missing.labels) == {
        "team": "growth",
        "soda_check": "columns.revenue.checks.missing",
    }
    rows = results[IDS[0]]
    assert rows.value == 200.0
    assert rows.threshold.fail == 150.0
    assert rows.threshold.fail_min == 10.0
    assert json.dumps(to_object(rows))  # the documented JSON shape serializes


@pytest.mark.postgres
def test_a_contract_soda_rejects_makes_every_planned_result_an_error_with_sodas_reason(
    warehouse_url: str,
) -> None:
    contract = "columns:\n  - name: revenue\n    checks:\n      - missing:\n      - nonsense:\n"
    results = probe(warehouse_url, [{"kind": "soda", "contract": contract}])
    assert list(results) == [
        "user_stats.soda.revenue.missing@offline",
        "user_stats.soda.revenue.nonsense@offline",
    ]
    for result in results.values():
        assert result.status is Status.ERROR
        assert isinstance(result.details, ErrorDetails)
        assert "Soda reported no result for columns.revenue.checks." in result.details.reason
        assert "Invalid check type 'nonsense'" in result.details.reason


@pytest.mark.postgres
def test_the_password_never_appears_in_results_or_logs(
    warehouse_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    closed = sa.make_url(warehouse_url).set(port=1).render_as_string(hide_password=False)
    (result,) = probe(
        closed, [{"kind": "soda", "contract": "columns: []\nchecks:\n  - row_count:\n"}]
    ).values()
    assert result.status is Status.ERROR
    assert SECRET not in json.dumps(to_object(result))
    assert SECRET not in caplog.text
    ok = probe(warehouse_url, [{"kind": "soda", "contract": CONTRACT}])
    assert SECRET not in json.dumps([to_object(r) for r in ok.values()])
    assert SECRET not in caplog.text


def write_parquet(path: Path) -> None:
    """The planted table of the PostgreSQL tests, as one Parquet file written by DuckDB."""
    engine = sa.create_engine("duckdb:///:memory:")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TABLE t AS SELECT (k % 50)::INTEGER AS user_id, "
                "TIMESTAMPTZ '2024-07-01 12:00+00' - k * INTERVAL '1 minute' AS event_timestamp, "
                "CASE WHEN k % 10 = 0 THEN NULL ELSE k::DOUBLE END AS revenue, "
                "(k % 20)::INTEGER AS purchases FROM range(1, 201) r(k)"
            )
            conn.exec_driver_sql(f"COPY t TO '{path}' (FORMAT parquet)")
    finally:
        engine.dispose()


def probe_parquet(root: Path, checks: list[dict[str, object]]) -> dict[str, CheckResult]:
    store = ParquetOfflineStore("files", ParquetStoreConfig(type="parquet", root=str(root)))
    the_view = view(checks, store="files")
    try:
        results = probe_view(the_view, tuple(plan_view(the_view)), Stores({}, {"files": store}), S)
    finally:
        store.close()
    return {r.check: r for r in results}


def test_a_contract_on_parquet_files_is_verified_through_duckdb(tmp_path: Path) -> None:
    """The same planted rows and contract as on PostgreSQL give the same statuses and values."""
    write_parquet(tmp_path / "x.parquet")
    results = probe_parquet(tmp_path, [{"kind": "soda", "contract": CONTRACT}])
    assert {check: r.status for check, r in results.items()} == {
        IDS[0]: Status.FAIL,  # 200 rows, not < 150
        IDS[1]: Status.PASS,
        IDS[2]: Status.WARN,  # 10 percent missing
        IDS[3]: Status.FAIL,  # revenue 101..199 above valid_max
        IDS[4]: Status.PASS,
    }
    missing = results[IDS[2]]
    assert isinstance(missing.details, SodaDetails)
    assert (missing.value, missing.details.diagnostics["missing_count"]) == (10.0, 20)
    assert missing.details.dataset == "files/main/x"
    assert results[IDS[0]].value == 200.0


def test_a_parquet_path_matching_no_file_is_an_error_result(tmp_path: Path) -> None:
    results = probe_parquet(tmp_path, [{"kind": "soda", "contract": CONTRACT}])
    for result in results.values():
        assert result.status is Status.ERROR
        assert isinstance(result.details, ErrorDetails)
        assert "no Parquet file matches path 'x.parquet'" in result.details.reason


def test_a_sql_store_other_than_postgresql_gives_an_error_result_naming_the_supported(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    results = probe(url, [{"kind": "soda", "contract": "columns: []\nchecks:\n  - row_count:\n"}])
    (result,) = results.values()
    assert result.status is Status.ERROR
    assert isinstance(result.details, ErrorDetails)
    assert result.details.reason == (
        "store 'warehouse': soda checks run on PostgreSQL (type: sql) and Parquet (type: parquet) stores, found a "
        "sqlite sql store"
    )


def test_the_dataset_name_of_parquet_files_is_the_stem_of_their_path() -> None:
    def named(path: str) -> str:
        return soda.parquet_dataset_name(
            FeatureView.model_validate(
                {
                    "name": "user_stats",
                    "entity": "user_id",
                    "ttl": "1d",
                    "features": {"x": "float"},
                    "offline": {"store": "files", "path": path},
                }
            )
        )

    assert named("features/user-stats.parquet") == "user_stats"
    assert named("features/daily/") == "daily"
    assert named("features/*.parquet") == "features"
    assert named("*.parquet") == "user_stats"


# --- the optional extra -------------------------------------------------------------------------


@pytest.fixture
def without_soda(monkeypatch: pytest.MonkeyPatch) -> None:
    """soda-core as if it were not installed: importing any of its modules fails."""
    for name in (*soda.MODULES, "soda_core", "soda_postgres", "soda_duckdb"):
        monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.postgres
@pytest.mark.usefixtures("without_soda")
def test_a_missing_extra_is_an_error_result_naming_the_install_command(
    warehouse_url: str,
) -> None:
    results = probe(warehouse_url, [{"kind": "soda", "contract": CONTRACT}])
    assert list(results) == IDS
    for result in results.values():
        assert result.status is Status.ERROR
        assert isinstance(result.details, ErrorDetails)
        assert "pip install 'featmon[soda]'" in result.details.reason


def write_config(tmp_path: Path, contract_file: str) -> Path:
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "user_stats.yaml").write_text(
        textwrap.dedent(
            f"""\
            feature_views:
              - name: user_stats
                entity: user_id
                ttl: 1d
                features: {{revenue: float, purchases: int}}
                offline: {{store: warehouse, table: features.user_stats}}
                checks:
                  - {{kind: soda, contract_file: {contract_file}}}
            """
        )
    )
    config = tmp_path / "config.yaml"
    config.write_text(
        "stores:\n  warehouse: {type: sql, url: 'postgresql+psycopg://ro@db/wh'}\n"
        "checks: checks/*.yaml\n"
    )
    return config


def test_a_contract_file_is_read_relative_to_the_check_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, "contracts/user_stats.yaml")
    (tmp_path / "checks" / "contracts").mkdir()
    (tmp_path / "checks" / "contracts" / "user_stats.yaml").write_text(CONTRACT)
    loaded = load(config, {})
    assert [p.id for p in loaded.planned] == IDS
    check = loaded.planned[0].check
    assert check.kind == "soda"
    assert check.contract_file == str(tmp_path / "checks" / "contracts" / "user_stats.yaml")


def test_an_unreadable_or_malformed_contract_file_is_a_located_problem(tmp_path: Path) -> None:
    config = write_config(tmp_path, "missing.yaml")
    with pytest.raises(ConfigError) as missing:
        load(config, {})
    assert "cannot read" in str(missing.value)
    assert "checks[0].contract_file" in str(missing.value)
    (tmp_path / "checks" / "missing.yaml").write_text("checks:\n  - row_count: 3\n")
    with pytest.raises(ConfigError) as malformed:
        load(config, {})
    assert "missing.yaml line 2: expected the settings of `row_count` as a mapping" in str(
        malformed.value
    )


@pytest.mark.usefixtures("without_soda")
def test_featmon_validate_warns_when_the_extra_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "../contracts/user_stats.yaml")
    (tmp_path / "contracts").mkdir()
    (tmp_path / "contracts" / "user_stats.yaml").write_text(CONTRACT)
    assert cli.main(["validate", "--config", str(config)]) == 0
    err = capsys.readouterr().err
    assert "warning: 5 soda check results" in err
    assert "pip install 'featmon[soda]'" in err


def test_featmon_validate_is_quiet_about_soda_when_the_extra_is_installed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "../contracts/user_stats.yaml")
    (tmp_path / "contracts").mkdir()
    (tmp_path / "contracts" / "user_stats.yaml").write_text(CONTRACT)
    assert cli.main(["validate", "--config", str(config)]) == 0
    assert "soda" not in capsys.readouterr().err


# --- .env and telemetry -------------------------------------------------------------------------

_VERIFY = """
import json, os, sys
from datetime import UTC, datetime
if sys.argv[2] == "soda-alone":  # soda-core imported as its docs show, without featmon
    from soda_core.common.env_config_helper import EnvConfigHelper
    EnvConfigHelper()
else:
    from checks.model import FeatureView
    from checks.plan import plan_view
    from monitor.config import SqlStoreConfig
    from monitor.runs.probe import Stores, probe_view
    from monitor.stores.sql.table import SqlOfflineStore
    view = FeatureView.model_validate({
        "name": "user_stats", "entity": "user_id", "ttl": "1d", "features": {"revenue": "float"},
        "offline": {"store": "warehouse", "table": "features.user_stats"},
        "checks": [{"kind": "soda", "contract": "columns: []\\nchecks:\\n  - row_count:\\n"}]})
    store = SqlOfflineStore("warehouse", SqlStoreConfig(type="sql", url=sys.argv[1]))
    (result,) = probe_view(view, tuple(plan_view(view)), Stores({}, {"warehouse": store}),
                           datetime.now(UTC))
    store.close()
    assert result.status.value == "pass", to_object(result)
from opentelemetry import trace
from soda_core.common.env_config_helper import EnvConfigHelper
print(json.dumps({
    "planted": os.environ.get("FEATMON_PLANTED_DOTENV"),
    "telemetry": EnvConfigHelper().soda_core_telemetry_enabled,
    "tracer": type(trace.get_tracer_provider()).__name__,
}))
"""


def run_in(cwd: Path, url: str, mode: str) -> dict[str, object]:
    """`python -c` (as a REPL, python-dotenv then searches the working directory for .env)."""
    env = {
        k: v for k, v in os.environ.items() if k not in (*soda.SWITCHES, "FEATMON_PLANTED_DOTENV")
    }
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, "-c", _VERIFY, url, mode],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


@pytest.mark.postgres
@pytest.mark.slow
def test_a_planted_env_file_is_not_read_and_telemetry_stays_off(
    warehouse_url: str, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(
        "FEATMON_PLANTED_DOTENV=read\nSODA_CORE_TELEMETRY_ENABLED=true\n"
    )
    alone = run_in(tmp_path, warehouse_url, "soda-alone")
    assert alone["planted"] == "read"  # the .env is where soda-core looks for one
    assert alone["telemetry"]  # and soda-core's telemetry is on by default
    featmon = run_in(tmp_path, warehouse_url, "featmon")
    assert featmon["planted"] is None
    assert not featmon["telemetry"]
    assert featmon["tracer"] == "ProxyTracerProvider"  # no SDK tracer exporting to Soda
