"""Skew: online values against the offline row they were materialized from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from alerts.report import render_report
from checks.kinds.skew import same
from checks.result import CheckResult, SkewDetails, Status
from checks.serde import to_object
from monitor.app import build_app
from monitor.loader import load
from monitor.runs.run import run_once
from tests.analytics_fixtures import (
    OfflineRowSpec,
    config,
    write_offline,
    write_online,
    write_parquet,
)

NOW = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
ONLINE_AT = NOW - timedelta(hours=1)
CHECK = "      - {kind: skew, max: 0.1, examples: 5}"


def test_numbers_within_the_relative_tolerance_are_the_same() -> None:
    assert same(100.0, 100.00009, abs_tol=0, rel_tol=1e-6) is True
    assert same(100.0, 100.0002, abs_tol=0, rel_tol=1e-6) is False


def test_nulls_match_nulls_and_nan_but_not_a_value() -> None:
    assert same(None, float("nan"), abs_tol=0, rel_tol=0) is True
    assert same(None, 0.0, abs_tol=1, rel_tol=0) is False


def test_a_boolean_equals_the_integer_an_engine_without_booleans_stores() -> None:
    assert same(True, 1, abs_tol=0, rel_tol=0) is True
    assert same(False, 1, abs_tol=0, rel_tol=0) is False


def planted() -> tuple[list[tuple[int, datetime, float | None, str | None]], list[OfflineRowSpec]]:
    """Users 1..10 online an hour ago with x = 1.5 u and colour red. Offline, each has a row two
    hours ago with the same values and a newer row (30 minutes ago, x = 999) that the online
    value cannot come from; user 1 also an older, different row. Planted: user 3's x differs
    (4.6 for 4.5), user 7's colour (blue), user 9's x by 1e-9 (within tolerance), and user 10
    has no offline row before its online time."""
    online: list[tuple[int, datetime, float | None, str | None]] = [
        (u, ONLINE_AT, u * 1.5, "red") for u in range(1, 11)
    ]
    offline: list[OfflineRowSpec] = []
    for u in range(1, 10):
        x = {3: 4.6, 9: 13.5 + 1e-9}.get(u, u * 1.5)
        offline.append((u, NOW - timedelta(hours=2), x, "blue" if u == 7 else "red"))
    offline += [(u, NOW - timedelta(minutes=30), 999.0, "green") for u in range(1, 11)]
    offline.append((1, NOW - timedelta(hours=5), -1.0, "grey"))
    return online, offline


def skew_result(root: Path, offline: str, location: str) -> CheckResult:
    with build_app(load(config(root, offline, location, CHECK, root / "state.db"), {})) as app:
        (result,) = run_once(app, NOW).results
    return result


def assert_planted(result: CheckResult) -> None:
    assert isinstance(result.details, SkewDetails)
    details = result.details
    assert (details.compared, details.mismatched, details.without_offline_row) == (9, 2, 1)
    assert dict(details.per_feature) == {"colour": 1, "x": 1}
    assert result.value == pytest.approx(2 / 9)
    assert result.status is Status.FAIL
    shown = {e.key: e.differences for e in details.examples}
    assert shown == {(3,): (("x", 4.5, 4.6),), (7,): (("colour", "red", "blue"),)}


def test_skew_against_parquet_rows_finds_the_planted_mismatches(tmp_path: Path) -> None:
    online, offline = planted()
    write_online(tmp_path / "online.db", online)
    write_parquet(tmp_path / "user_stats.parquet", offline)
    result = skew_result(
        tmp_path, f"{{type: parquet, root: '{tmp_path}'}}", "path: user_stats.parquet"
    )
    assert_planted(result)


def test_skew_against_a_sqlite_table_finds_the_planted_mismatches(tmp_path: Path) -> None:
    online, offline = planted()
    write_online(tmp_path / "online.db", online)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'offline.db'}")
    write_offline(engine, offline)
    engine.dispose()
    result = skew_result(
        tmp_path, f"{{type: sql, url: 'sqlite:///{tmp_path / 'offline.db'}'}}", "table: user_stats"
    )
    assert_planted(result)


def test_an_example_shows_both_event_times(tmp_path: Path) -> None:
    online, offline = planted()
    write_online(tmp_path / "online.db", online)
    write_parquet(tmp_path / "user_stats.parquet", offline)
    result = skew_result(
        tmp_path, f"{{type: parquet, root: '{tmp_path}'}}", "path: user_stats.parquet"
    )
    assert isinstance(result.details, SkewDetails)
    first = to_object(result.details.examples[0])
    assert first["online_event_time"] == "2026-11-26T05:00:00Z"
    assert first["offline_event_time"] == "2026-11-26T04:00:00Z"


@pytest.mark.postgres
def test_skew_against_postgresql_finds_the_planted_mismatches(
    tmp_path: Path, pg_url: str, pg_schema: str
) -> None:
    online, offline = planted()
    write_online(tmp_path / "online.db", online)
    engine = sa.create_engine(pg_url)
    write_offline(engine, offline, schema=pg_schema)
    engine.dispose()
    result = skew_result(
        tmp_path, f"{{type: sql, url: '{pg_url}'}}", f"table: {pg_schema}.user_stats"
    )
    assert_planted(result)


def test_the_report_shows_the_examples_escaped(tmp_path: Path) -> None:
    """A value read from a store is text in the report, never markup."""
    online, offline = planted()
    online[6] = (7, ONLINE_AT, 7 * 1.5, "<b>red</b>")
    write_online(tmp_path / "online.db", online)
    write_parquet(tmp_path / "user_stats.parquet", offline)
    path = config(
        tmp_path, f"{{type: parquet, root: '{tmp_path}'}}", "path: user_stats.parquet", CHECK,
        tmp_path / "state.db",
    )  # fmt: skip
    with build_app(load(path, {})) as app:
        run = run_once(app, NOW)
    page = render_report(run)
    assert "&lt;b&gt;red&lt;/b&gt;" in page
    assert "<b>red</b>" not in page
    assert "no offline row" in page
