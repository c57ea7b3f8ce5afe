"""Distribution drift: PSI (and KS) between a reference window offline and the online sample,
or (target offline) a recent window of the offline store."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from alerts.report import render_report
from checks.kinds.distribution_drift import (
    category_bins,
    edges,
    ks,
    numeric_bins,
    psi_of_bins,
    quantile,
)
from checks.model import DistributionDriftCheck, FeatureView, ReferenceWindow
from checks.plan import default_target
from checks.result import CheckResult, DriftDetails, Status
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


def test_a_quantile_interpolates_between_order_statistics() -> None:
    assert quantile([1, 2, 3, 4], 0.5) == 2.5


def test_the_deciles_of_one_to_a_hundred_are_nine_point_nine_apart() -> None:
    assert edges([float(v) for v in range(1, 101)], 10) == pytest.approx(
        [10.9, 20.8, 30.7, 40.6, 50.5, 60.4, 70.3, 80.2, 90.1]
    )


def test_psi_of_a_half_and_half_reference_against_three_quarters() -> None:
    """Bins (-inf, 5.5] and (5.5, inf): reference 0.5 / 0.5, current 0.75 / 0.25:
    0.25 ln 1.5 + 0.25 ln 2 = 0.25 ln 3."""
    bins = numeric_bins([float(v) for v in range(1, 11)], [1.0, 2.0, 3.0, 9.0], 2)
    assert [(b.reference, b.current) for b in bins] == [(0.5, 0.75), (0.5, 0.25)]
    assert psi_of_bins(bins) == pytest.approx(0.25 * math.log(3))


def test_an_empty_bin_counts_as_epsilon() -> None:
    """Current all in the first bin: the empty second contributes (0.0001 - 0.5) ln(0.0002)."""
    bins = numeric_bins([1.0, 2.0, 3.0, 4.0], [1.0, 1.0], 2)
    expected = 0.5 * math.log(2) + (0.0001 - 0.5) * math.log(0.0001 / 0.5)
    assert psi_of_bins(bins) == pytest.approx(expected)
    assert psi_of_bins(bins) == pytest.approx(4.604319, abs=1e-6)


def test_ks_is_the_largest_gap_between_the_distribution_functions() -> None:
    assert ks([1, 2, 3, 4], [3, 4, 5, 6]) == 0.5


def test_categories_beyond_the_top_k_and_unseen_ones_are_other() -> None:
    """Reference a 6, b 3, c 1; current a 2, b 2, d 1; top 2: a, b, other."""
    bins = category_bins(list("aaaaaabbbc"), list("aabbd"), 2)
    assert [(b.label, b.reference, b.current) for b in bins] == [
        ("a", 0.6, 0.4), ("b", 0.3, 0.4), ("other", pytest.approx(0.1), 0.2),
    ]  # fmt: skip
    expected = -0.2 * math.log(0.4 / 0.6) + 0.1 * math.log(0.4 / 0.3) + 0.1 * math.log(2)
    assert psi_of_bins(bins) == pytest.approx(expected)


def test_a_reference_window_takes_one_form_or_the_other() -> None:
    with pytest.raises(ValueError, match="expected either `start` and `end` or `last`"):
        ReferenceWindow.model_validate(
            {"start": "2026-11-01T00:00:00Z", "end": "2026-11-08T00:00:00Z", "last": "7d"}
        )


CHECK = "      - {kind: distribution_drift, reference: {last: 7d, ending: 1d}, top_k: 10}"


@pytest.fixture
def shifted(tmp_path: Path) -> dict[str, DriftDetails]:
    """Reference (3 days ago): users 1..100 with x = u, all red. Outside the window, an hour
    ago, rows with x = 1000 that must not count. Online now: x = u + 50, users 81..100 blue."""
    online = [
        (u, NOW - timedelta(minutes=5), u + 50.0, "blue" if u > 80 else "red")
        for u in range(1, 101)
    ]
    offline: list[OfflineRowSpec] = [
        (u, NOW - timedelta(days=3), float(u), "red") for u in range(1, 101)
    ]
    offline += [(u, NOW - timedelta(hours=1), 1000.0, "green") for u in range(1, 101)]
    write_online(tmp_path / "online.db", online)
    write_parquet(tmp_path / "user_stats.parquet", offline)
    store = f"{{type: parquet, root: '{tmp_path}'}}"
    path = config(tmp_path, store, "path: user_stats.parquet", CHECK, tmp_path / "state.db")
    with build_app(load(path, {})) as app:
        results = run_once(app, NOW).results
    out = {}
    for r in results:
        assert isinstance(r.details, DriftDetails), r.details
        assert r.feature is not None
        out[r.feature] = r.details
    return out


def test_a_shift_of_half_the_range_gives_the_planted_psi(shifted: dict[str, DriftDetails]) -> None:
    """Reference deciles hold 10% each; the shifted sample: 0 in the five lowest, 10% in the
    next four, 60% above 90.1: 5 (0.0001 - 0.1) ln 0.001 + 0.5 ln 6."""
    expected = 5 * (0.0001 - 0.1) * math.log(0.001) + 0.5 * math.log(6)
    assert shifted["x"].psi == pytest.approx(expected)
    assert shifted["x"].ks == 0.5
    assert (shifted["x"].reference_rows, shifted["x"].current_rows) == (100, 100)


def test_a_new_category_online_drifts_by_the_planted_psi(shifted: dict[str, DriftDetails]) -> None:
    """Reference all red; online 80% red, 20% blue (unseen: other)."""
    expected = -0.2 * math.log(0.8) + (0.2 - 0.0001) * math.log(0.2 / 0.0001)
    assert shifted["colour"].psi == pytest.approx(expected)
    assert shifted["colour"].ks is None


def test_the_reference_window_ends_a_day_before_the_run(tmp_path: Path) -> None:
    """The window of {last: 7d, ending: 1d} at NOW, with a check that passes on no shift."""
    same = [(u, NOW - timedelta(days=3), float(u), "red") for u in range(1, 101)]
    write_online(tmp_path / "online.db", [(u, NOW, float(u), "red") for u in range(1, 101)])
    write_parquet(tmp_path / "user_stats.parquet", same)
    store = f"{{type: parquet, root: '{tmp_path}'}}"
    path = config(tmp_path, store, "path: user_stats.parquet", CHECK, tmp_path / "state.db")
    with build_app(load(path, {})) as app:
        results = run_once(app, NOW).results
    first = results[0]
    assert isinstance(first.details, DriftDetails)
    assert first.details.reference_since == NOW - timedelta(days=8)
    assert first.details.reference_until == NOW - timedelta(days=1)
    assert [r.status for r in results] == [Status.PASS, Status.PASS]
    assert first.value == pytest.approx(0.0)


# --- target offline: a recent window of the offline store against the reference ---------------

OFFLINE_CHECK = (
    "      - {kind: distribution_drift, target: offline, reference: {last: 7d, ending: 1d},"
    " current: {last: 1d}, top_k: 10}"
)


def recent_shift() -> list[OfflineRowSpec]:
    """Reference (3 days ago): users 1..100 with x = u, all red. The last day (an hour ago):
    x = u + 50 and users 81..100 blue, the same planted shift as the online one above. Five
    days ago, outside both windows: rows with x = 1000 that must not count."""
    rows: list[OfflineRowSpec] = [
        (u, NOW - timedelta(days=3), float(u), "red") for u in range(1, 101)
    ]
    rows += [
        (u, NOW - timedelta(hours=1), u + 50.0, "blue" if u > 80 else "red") for u in range(1, 101)
    ]
    rows += [(u, NOW - timedelta(days=9), 1000.0, "green") for u in range(1, 101)]
    return rows


def offline_drift(root: Path, store: str, location: str) -> dict[str, CheckResult]:
    write_online(root / "online.db", [])
    path = config(root, store, location, OFFLINE_CHECK, root / "state.db")
    with build_app(load(path, {})) as app:
        assert app.state is not None
        run = run_once(app, NOW)
        app.record(run)
        recorded = app.state.recorded_run(run.run_id)
    assert recorded is not None
    assert recorded.results == run.results  # the details survive the state database
    page = render_report(run)
    assert "100 values, <time" in page  # the current window, where an online drift says "online"
    assert "online values" not in page
    return {r.check: r for r in run.results}


def assert_recent_shift(results: dict[str, CheckResult]) -> None:
    x = results["user_stats.distribution_drift.x@offline"]
    colour = results["user_stats.distribution_drift.colour@offline"]
    assert isinstance(x.details, DriftDetails)
    assert isinstance(colour.details, DriftDetails)
    assert x.details.psi == pytest.approx(5 * (0.0001 - 0.1) * math.log(0.001) + 0.5 * math.log(6))
    assert (x.details.ks, x.details.reference_rows, x.details.current_rows) == (0.5, 100, 100)
    assert colour.details.psi == pytest.approx(
        -0.2 * math.log(0.8) + (0.2 - 0.0001) * math.log(0.2 / 0.0001)
    )
    assert (x.details.current_since, x.details.current_until) == (NOW - timedelta(days=1), NOW)
    assert x.details.sample is None
    assert (x.status, colour.status) == (Status.FAIL, Status.FAIL)
    shown = to_object(x)["details"]
    assert isinstance(shown, dict)
    assert (shown["current_since"], shown["current_until"]) == (
        "2026-11-25T06:00:00Z",
        "2026-11-26T06:00:00Z",
    )


def test_target_offline_compares_the_recent_window_of_a_parquet_file(tmp_path: Path) -> None:
    write_parquet(tmp_path / "user_stats.parquet", recent_shift())
    store = f"{{type: parquet, root: '{tmp_path}'}}"
    assert_recent_shift(offline_drift(tmp_path, store, "path: user_stats.parquet"))


@pytest.mark.postgres
def test_target_offline_compares_the_recent_window_of_a_postgresql_table(
    tmp_path: Path, pg_url: str
) -> None:
    schema = f"drift_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.schema.CreateSchema(schema))
        write_offline(engine, recent_shift(), schema=schema)
        store = f"{{type: sql, url: '{pg_url}'}}"
        assert_recent_shift(offline_drift(tmp_path, store, f"table: {schema}.user_stats"))
    finally:
        with engine.begin() as conn:
            conn.execute(sa.schema.DropSchema(schema, cascade=True, if_exists=True))
        engine.dispose()


def test_current_is_refused_on_target_online() -> None:
    with pytest.raises(ValueError, match="expected `current` only with target `offline`"):
        DistributionDriftCheck.model_validate(
            {
                "kind": "distribution_drift",
                "target": "online",
                "reference": {"last": "7d"},
                "current": {"last": "1d"},
            }
        )


def test_current_alone_makes_the_check_an_offline_one() -> None:
    check = DistributionDriftCheck.model_validate(
        {"kind": "distribution_drift", "reference": {"last": "7d"}, "current": {"last": "2h"}}
    )
    view = FeatureView.model_validate(
        {
            "name": "v",
            "entity": "user_id",
            "ttl": "1d",
            "features": {"x": "float"},
            "online": {"store": "online"},
            "offline": {"store": "warehouse", "table": "v"},
        }
    )
    assert default_target(check, view) == "offline"
    assert check.current_window() == ReferenceWindow(last=timedelta(hours=2))
