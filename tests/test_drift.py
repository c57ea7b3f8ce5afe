"""Distribution drift: PSI (and KS) between a reference window offline and the online sample."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from checks.kinds.distribution_drift import (
    category_bins,
    edges,
    ks,
    numeric_bins,
    psi_of_bins,
    quantile,
)
from checks.model import ReferenceWindow
from checks.result import DriftDetails, Status
from monitor.app import build_app
from monitor.loader import load
from monitor.run import run_once
from tests.analytics_fixtures import OfflineRowSpec, config, write_online, write_parquet

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
