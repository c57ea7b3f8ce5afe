"""The offline check kinds beyond the basics, evaluated on small hand-built observations:
late arrivals, row count, duplicates, and range (offline and online). Every number is computed
by hand; times are relative to `AT`, the scheduled time, and windows default to the TTL, 1d."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from checks.evaluate import evaluate
from checks.kinds.late_arrivals import lateness_bounds, lateness_metrics
from checks.observation import (
    DistinctKeys,
    KeyedRows,
    LatenessCount,
    MaxLateness,
    MetricValue,
    NullCount,
    OfflineMetric,
    OfflineObservation,
    RowCount,
    ValueCount,
    ValueStat,
)
from checks.plan import PlannedCheck
from checks.result import (
    DuplicateDetails,
    ErrorDetails,
    LateArrivalDetails,
    RangeDetails,
    Status,
    Threshold,
)
from checks.serde import to_object
from tests.builders import AT, entity, missing, null, offline, online, plan, undecodable, value

MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def reason(details: object) -> str:
    assert isinstance(details, ErrorDetails)
    return details.reason


# --- late arrivals (offline) ------------------------------------------------------------------

INGESTED = {"store": "warehouse", "table": "features.user_stats", "ingested_at": "created_ts"}


def late_check(**fields: object) -> PlannedCheck:
    check: dict[str, object] = {"kind": "late_arrivals", "watermark": "10m", "max": 0.05}
    return plan({**check, **fields}, offline=INGESTED)


def lateness_observation(
    lateness: list[float], without_ingestion: int = 0, watermark: timedelta = 10 * MIN
) -> OfflineObservation:
    """What the store measures for rows of these latenesses (seconds) in the last day: the
    rows, the known ones, the cumulative count at each boundary, and the largest."""
    values: dict[OfflineMetric, MetricValue] = {
        RowCount(DAY): len(lateness) + without_ingestion,
        LatenessCount("created_ts", None, DAY): len(lateness),
        MaxLateness("created_ts", DAY): max(lateness, default=None),
    }
    for bound in lateness_bounds(watermark):
        at_most = sum(1 for s in lateness if s <= bound.total_seconds())
        values[LatenessCount("created_ts", bound, DAY)] = at_most
    return offline(values)


# 150 rows 30 s late, 38 rows 3 minutes, 2 exactly at the 10-minute watermark, 10 rows 12 minutes.
LATENESS = [30.0] * 150 + [180.0] * 38 + [600.0] * 2 + [720.0] * 10


def test_late_arrivals_are_rows_later_than_the_watermark_over_known_rows() -> None:
    """10 of 200 known rows are more than 10 minutes late (the 2 at exactly 10 minutes are not):
    0.05, at max. The 4 rows without an ingestion time are reported, not counted."""
    result = evaluate(late_check(), lateness_observation(LATENESS, without_ingestion=4), AT)
    assert (result.value, result.status, result.sample_size) == (0.05, Status.PASS, 200)
    assert result.details == LateArrivalDetails(
        late=10,
        rows=200,
        without_ingestion_time=4,
        watermark_seconds=600.0,
        window_seconds=86400.0,
        p50=30.0,  # rank 100: <= 30 s holds 150 rows
        p99=720.0,  # rank 198: first reached at <= 15m, capped at the largest lateness, 12m
        max=720.0,
    )


def test_late_arrivals_quantile_is_the_upper_boundary_of_its_bucket() -> None:
    """Five rows 100 s late and five 1000 s late: the true p50 is 100 s, reported as 120 s, the
    upper boundary of (60 s, 120 s]; p99 lies in (900 s, 1800 s], capped at max 1000 s."""
    result = evaluate(late_check(max=1.0), lateness_observation([100.0] * 5 + [1000.0] * 5), AT)
    assert isinstance(result.details, LateArrivalDetails)
    assert (result.details.p50, result.details.p99, result.details.max) == (120.0, 1000.0, 1000.0)


def test_late_arrivals_beyond_the_last_boundary_report_the_largest_lateness() -> None:
    nine_days = 9 * 86400.0
    result = evaluate(late_check(max=1.0), lateness_observation([nine_days] * 3), AT)
    assert isinstance(result.details, LateArrivalDetails)
    assert (result.details.p50, result.details.p99) == (nine_days, nine_days)
    assert result.value == 1.0


def test_late_arrivals_watermark_is_a_histogram_boundary_so_lateness_at_it_is_exact() -> None:
    """A 7-minute watermark is no fixed boundary: it is measured as one, so the 38 rows at 3
    minutes and 2 at 10 minutes split exactly: 12 rows are late."""
    observation = lateness_observation(LATENESS, watermark=7 * MIN)
    result = evaluate(late_check(watermark="7m", max=1.0), observation, AT)
    assert isinstance(result.details, LateArrivalDetails)
    assert (result.details.late, result.value) == (12, 0.06)


@pytest.mark.parametrize(
    ("thresholds", "status"),
    [
        ({"warn": 0.01, "max": 0.05}, Status.WARN),
        ({"max": 0.049}, Status.FAIL),
        ({"warn": 0.05}, Status.PASS),
    ],
)
def test_late_arrivals_thresholds_are_fractions(
    thresholds: dict[str, float], status: Status
) -> None:
    check = {"kind": "late_arrivals", "watermark": "10m", **thresholds}
    result = evaluate(plan(check, offline=INGESTED), lateness_observation(LATENESS), AT)
    assert (result.value, result.status) == (0.05, status)


def test_late_arrivals_use_the_checks_own_window() -> None:
    values: dict[OfflineMetric, MetricValue] = {
        RowCount(HOUR): 10,
        LatenessCount("created_ts", None, HOUR): 10,
        LatenessCount("created_ts", 10 * MIN, HOUR): 9,
        MaxLateness("created_ts", HOUR): 700.0,
    }
    result = evaluate(late_check(window="1h", max=1.0), offline(values), AT)
    assert isinstance(result.details, LateArrivalDetails)
    assert (result.value, result.details.window_seconds) == (0.1, 3600.0)


def test_late_arrivals_of_a_dropped_ingestion_column_is_an_error_with_its_reason() -> None:
    gone = "column 'created_ts' is not in table 'features.user_stats'"
    observation = offline(
        {RowCount(DAY): 10},
        unavailable={
            m: gone for m in lateness_metrics("created_ts", 10 * MIN, DAY) if m != RowCount(DAY)
        },
    )
    result = evaluate(late_check(), observation, AT)
    assert (result.status, reason(result.details)) == (Status.ERROR, gone)


def test_late_arrivals_without_any_ingestion_time_is_an_error_not_zero() -> None:
    result = evaluate(late_check(), lateness_observation([], without_ingestion=5), AT)
    assert (result.status, reason(result.details)) == (
        Status.ERROR,
        "features.user_stats has no rows with an ingestion time in the last 1d to measure",
    )


def test_late_arrivals_json_names_lateness_quantiles_in_seconds() -> None:
    shown = to_object(evaluate(late_check(), lateness_observation(LATENESS, 4), AT))
    assert shown["check"] == "user_stats.late_arrivals@offline"
    assert shown["details"] == {
        "late": 10,
        "rows": 200,
        "without_ingestion_time": 4,
        "watermark_seconds": 600.0,
        "window_seconds": 86400.0,
        "lateness_p50": 30.0,
        "lateness_p99": 720.0,
        "lateness_max": 720.0,
    }


# --- row count (offline) ----------------------------------------------------------------------

ROW_BOUNDS = {"kind": "row_count", "min": 100, "warn_min": 150, "warn_max": 900, "max": 1000}


@pytest.mark.parametrize(
    ("rows", "status"),
    [
        (0, Status.FAIL),
        (99, Status.FAIL),
        (100, Status.WARN),  # at min: not below it
        (149, Status.WARN),
        (150, Status.PASS),
        (900, Status.PASS),
        (901, Status.WARN),
        (1000, Status.WARN),
        (1001, Status.FAIL),
    ],
)
def test_row_count_is_held_between_its_bounds(rows: int, status: Status) -> None:
    result = evaluate(plan(ROW_BOUNDS), offline({RowCount(DAY): rows}), AT)
    assert (result.value, result.status) == (float(rows), status)


def test_row_count_details_and_two_sided_threshold_json() -> None:
    shown = to_object(evaluate(plan(ROW_BOUNDS), offline({RowCount(DAY): 216}), AT))
    assert (shown["target"], shown["value"], shown["status"]) == ("offline", 216.0, "pass")
    assert shown["threshold"] == {
        "min": 100.0,
        "max": 1000.0,
        "warn_min": 150.0,
        "warn_max": 900.0,
        "unit": "count",
    }
    assert shown["details"] == {"rows": 216, "window_seconds": 86400.0}


def test_row_count_with_only_a_minimum_is_a_min_threshold() -> None:
    result = evaluate(plan({"kind": "row_count", "min": 1}), offline({RowCount(DAY): 0}), AT)
    assert result.threshold == Threshold("min", 1.0, None, "count")
    assert result.status is Status.FAIL


def test_row_count_counts_the_checks_own_window() -> None:
    observation = offline({RowCount(DAY): 500, RowCount(2 * HOUR): 20})
    result = evaluate(plan({"kind": "row_count", "min": 50, "window": "2h"}), observation, AT)
    assert (result.value, result.status) == (20.0, Status.FAIL)


def test_row_count_of_an_unusable_event_time_is_an_error_with_its_reason() -> None:
    why = "column 'event_timestamp' of table 'features.user_stats' is not a timestamp"
    observation = offline(unavailable={RowCount(DAY): why})
    result = evaluate(plan({"kind": "row_count", "min": 1}), observation, AT)
    assert (result.status, reason(result.details)) == (Status.ERROR, why)


# --- duplicates (offline) ---------------------------------------------------------------------

KEYS = ("user_id",)


def test_duplicates_are_rows_beyond_the_first_of_each_key_and_time_over_keyed_rows() -> None:
    """211 keyed rows, 204 distinct (user_id, event time): 7 duplicates, 7/211."""
    observation = offline({KeyedRows(KEYS, DAY): 211, DistinctKeys(KEYS, DAY): 204})
    result = evaluate(plan({"kind": "duplicates", "max": 0.0}), observation, AT)
    assert (result.value, result.status, result.sample_size) == (7 / 211, Status.FAIL, 211)
    assert result.details == DuplicateDetails(
        duplicates=7, rows=211, distinct=204, keys=KEYS, window_seconds=86400.0
    )
    assert to_object(result)["details"] == {
        "duplicates": 7,
        "rows": 211,
        "distinct": 204,
        "keys": ["user_id"],
        "window_seconds": 86400.0,
    }


def test_duplicates_of_a_compound_key_use_every_join_key() -> None:
    compound = ("region", "user_id")
    observation = offline({KeyedRows(compound, DAY): 10, DistinctKeys(compound, DAY): 10})
    result = evaluate(
        plan({"kind": "duplicates", "max": 0.0}, entity=list(compound)), observation, AT
    )
    assert (result.value, result.status) == (0.0, Status.PASS)


@pytest.mark.parametrize(
    ("thresholds", "status"),
    [({"max": 0.05}, Status.PASS), ({"warn": 0.01, "max": 0.05}, Status.WARN)],
)
def test_duplicates_thresholds_are_fractions(thresholds: dict[str, float], status: Status) -> None:
    observation = offline({KeyedRows(KEYS, DAY): 100, DistinctKeys(KEYS, DAY): 95})
    result = evaluate(plan({"kind": "duplicates", **thresholds}), observation, AT)
    assert (result.value, result.status) == (0.05, status)


def test_duplicates_without_rows_is_an_error() -> None:
    observation = offline({KeyedRows(KEYS, DAY): 0, DistinctKeys(KEYS, DAY): 0})
    result = evaluate(plan({"kind": "duplicates", "max": 0.0}), observation, AT)
    assert (result.status, reason(result.details)) == (
        Status.ERROR,
        "features.user_stats has no rows in the last 1d to measure",
    )


def test_duplicates_of_a_dropped_key_column_is_an_error_with_its_reason() -> None:
    gone = "column 'user_id' is not in table 'features.user_stats'"
    observation = offline(unavailable={KeyedRows(KEYS, DAY): gone, DistinctKeys(KEYS, DAY): gone})
    result = evaluate(plan({"kind": "duplicates", "max": 0.0}), observation, AT)
    assert (result.status, reason(result.details)) == (Status.ERROR, gone)


# --- range, offline ---------------------------------------------------------------------------


def range_check(**fields: object) -> dict[str, object]:
    check: dict[str, object] = {"kind": "range", "feature": "purchases", "max": 0.0}
    return {**check, **fields}


def range_observation(
    column: str = "purchases",
    counts: dict[str, int] | None = None,
    bounds: tuple[float | None, float | None] = (None, None),
    rows: int = 216,
    nulls: int = 0,
) -> OfflineObservation:
    tests = {"nan": 0, "infinite": 0, "negative": 0, "below": 0, "above": 0, **(counts or {})}
    values: dict[OfflineMetric, MetricValue] = {
        RowCount(DAY): rows,
        NullCount(column, DAY): nulls,
        ValueStat(column, "min", DAY): -3,
        ValueStat(column, "max", DAY): 75,
        ValueStat(column, "mean", DAY): 9.5,
        ValueCount(column, "nan", DAY): tests["nan"],
        ValueCount(column, "infinite", DAY): tests["infinite"],
        ValueCount(column, "negative", DAY): tests["negative"],
        ValueCount(column, "below", DAY, bounds[0]): tests["below"],
        ValueCount(column, "above", DAY, bounds[1]): tests["above"],
    }
    return offline(values)


def test_range_counts_each_out_of_range_value_once_over_non_null_values() -> None:
    """Non-null: 216 - 6 = 210. NaN 3, infinite 2, negative 2, above 50: 3. The 2 values below
    min_value 0 are the negative ones, counted once (below_min 0). Out of range: 10 of 210."""
    planned = plan(range_check(non_negative=True, min_value=0, max_value=50))
    observation = range_observation(
        counts={"nan": 3, "infinite": 2, "negative": 2, "below": 2, "above": 3},
        bounds=(0.0, 50.0),
        nulls=6,
    )
    result = evaluate(planned, observation, AT)
    assert result.details == RangeDetails(
        rows=210,
        nan=3,
        infinite=2,
        negative=2,
        below_min=0,
        above_max=3,
        min=-3.0,
        max=75.0,
        mean=9.5,
        min_value=0.0,
        max_value=50.0,
        window_seconds=86400.0,
    )
    assert (result.value, result.status, result.sample_size) == (10 / 210, Status.FAIL, 210)


def test_range_below_min_excludes_the_negatives_it_contains() -> None:
    """min_value 5 with non_negative: 6 values below 5, 2 of them negative: 2 + 4."""
    planned = plan(range_check(non_negative=True, min_value=5, max=1.0))
    observation = range_observation(counts={"negative": 2, "below": 6}, bounds=(5.0, None))
    result = evaluate(planned, observation, AT)
    assert isinstance(result.details, RangeDetails)
    assert (result.details.negative, result.details.below_min) == (2, 4)
    assert result.details.out_of_range == 6


def test_range_reports_only_the_reasons_it_looks_for() -> None:
    """Without bounds nor non_negative, only NaN and infinity are out of range."""
    observation = range_observation(counts={"nan": 1, "negative": 9, "below": 9, "above": 9})
    result = evaluate(plan(range_check(max=1.0)), observation, AT)
    assert isinstance(result.details, RangeDetails)
    assert (result.details.negative, result.details.below_min, result.details.above_max) == (
        None,
        None,
        None,
    )
    assert result.value == 1 / 216
    details = to_object(result)["details"]
    assert isinstance(details, dict)
    assert (details["out_of_range"], details["negative"], details["min_value"]) == (1, None, None)


@pytest.mark.parametrize(
    ("thresholds", "status"),
    [({"max": 0.05}, Status.PASS), ({"warn": 0.01, "max": 0.05}, Status.WARN)],
)
def test_range_thresholds_are_fractions(thresholds: dict[str, float], status: Status) -> None:
    planned = plan(range_check(max_value=10, **thresholds))
    observation = range_observation(counts={"above": 5}, bounds=(None, 10.0), rows=100)
    result = evaluate(planned, observation, AT)
    assert (result.value, result.status) == (0.05, status)


def test_range_without_values_is_an_error() -> None:
    observation = range_observation(rows=8, nulls=8)
    result = evaluate(plan(range_check()), observation, AT)
    assert (result.status, reason(result.details)) == (
        Status.ERROR,
        "features.user_stats has no values of purchases in the last 1d to measure",
    )


def test_range_of_a_dropped_column_is_an_error_with_its_reason() -> None:
    gone = "column 'purchases' is not in table 'features.user_stats'"
    observation = offline(
        {RowCount(DAY): 9},
        unavailable={
            NullCount("purchases", DAY): gone,
            ValueCount("purchases", "nan", DAY): gone,
        },
    )
    result = evaluate(plan(range_check()), observation, AT)
    assert (result.status, reason(result.details)) == (Status.ERROR, gone)


# --- range, online ----------------------------------------------------------------------------

RANGE_SAMPLE = online(
    entity(1, purchases=value(3)),
    entity(2, purchases=value(-2)),  # negative count
    entity(3, purchases=value(math.nan)),
    entity(4, purchases=value(math.inf)),
    entity(5, purchases=value(120)),  # above 100
    entity(6, purchases=value(7.5)),
    entity(7, purchases=null()),  # null: null_rate's concern
    entity(8, revenue=value(1.0)),  # purchases absent: ignored too
    entity(9, purchases=value(True)),  # a bool is not a number here
    entity(10, purchases=value("12")),  # nor is text
    entity(11, purchases=undecodable()),
    missing(12),
)


def test_online_range_holds_the_numeric_sampled_values() -> None:
    """Six numeric values: -2 negative, NaN, inf, 120 above: 4 of 6. Finite: 3, -2, 120, 7.5."""
    planned = plan(range_check(non_negative=True, max_value=100, target="online"))
    result = evaluate(planned, RANGE_SAMPLE, AT)
    assert isinstance(result.details, RangeDetails)
    details = result.details
    assert (result.value, result.sample_size, result.status) == (4 / 6, 6, Status.FAIL)
    assert (details.nan, details.infinite, details.negative, details.above_max) == (1, 1, 1, 1)
    assert details.below_min is None
    assert (details.min, details.max, details.mean) == (-2.0, 120.0, 32.125)
    assert details.interval is not None
    assert details.interval.low < 4 / 6 < details.interval.high
    assert details.sample is not None
    assert (details.sample.asked, details.sample.found) == (12, 11)


def test_online_range_without_numeric_values_is_an_error() -> None:
    planned = plan(range_check(target="online"))
    result = evaluate(planned, online(entity(1, purchases=null()), missing(2)), AT)
    assert (result.status, reason(result.details)) == (
        Status.ERROR,
        "none of the 2 sampled entities has a numeric value of purchases in the online store",
    )
