"""Each check kind's arithmetic on small hand-built observations, online and offline, through
`evaluate`. Ages are minutes or hours before `AT`, the scheduled time of the run."""

from __future__ import annotations

import json
import math
from datetime import timedelta

import pytest

from checks.evaluate import evaluate
from checks.observation import (
    ABSENT,
    Column,
    EntityReading,
    FeatureReading,
    FeatureState,
    FutureCount,
    MaxTimestamp,
    NullCount,
    OfflineObservation,
    ProbeFailure,
    RowCount,
)
from checks.result import (
    CoverageDetails,
    ErrorDetails,
    FreshnessDetails,
    NullRateDetails,
    Retyped,
    SchemaDriftDetails,
    Status,
)
from checks.serde import to_object
from tests.builders import (
    AT,
    entity,
    healthy,
    missing,
    null,
    offline,
    online,
    plan,
    undecodable,
    value,
)

MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def reason(details: object) -> str:
    assert isinstance(details, ErrorDetails)
    return details.reason


# --- freshness, online ------------------------------------------------------------------------

FRESHNESS_SAMPLE = online(
    # an entity's event time is its newest feature time: 10 minutes here, not 3 hours
    entity(1, revenue=value(age=10 * MIN), purchases=value(age=3 * HOUR)),
    entity(2, revenue=value(age=20 * MIN)),
    entity(3, revenue=value(age=30 * MIN), active_days=null(age=35 * MIN)),
    entity(4, revenue=value(age=40 * MIN)),
    entity(5, revenue=value(age=50 * MIN)),
    missing(6),  # coverage's concern, not freshness's
    entity(7, revenue=value(age=None)),  # present, but no time to measure
)


def test_freshness_quantiles_are_nearest_rank_ages_of_the_found_entities() -> None:
    """Ages 600, 1200, 1800, 2400, 3000 s: p50 is the 3rd (ceil 2.5), p90 and p99 the 5th."""
    result = evaluate(plan({"kind": "freshness", "max": "1h"}), FRESHNESS_SAMPLE, AT)
    assert isinstance(result.details, FreshnessDetails)
    details = result.details
    assert (details.p50, details.p90, details.p99, details.max) == (1800.0, 3000.0, 3000.0, 3000.0)
    assert (result.value, result.sample_size, result.status) == (3000.0, 5, Status.PASS)


def test_freshness_ages_are_measured_against_the_scheduled_time_passed_in() -> None:
    """No clock: an hour later, every age is 3600 s more."""
    result = evaluate(plan({"kind": "freshness", "max": "2h"}), FRESHNESS_SAMPLE, AT + HOUR)
    assert isinstance(result.details, FreshnessDetails)
    assert (result.details.p50, result.details.max) == (5400.0, 6600.0)


@pytest.mark.parametrize(
    ("quantile", "expected"), [("p50", 1800.0), ("p90", 3000.0), ("p99", 3000.0), ("max", 3000.0)]
)
def test_freshness_thresholds_the_quantile_it_names(quantile: str, expected: float) -> None:
    result = evaluate(
        plan({"kind": "freshness", "quantile": quantile, "max": "1h"}), FRESHNESS_SAMPLE, AT
    )
    assert result.value == expected


@pytest.mark.parametrize(
    ("thresholds", "status"),
    [
        ({"max": "30m"}, Status.PASS),  # p50 = 1800 s equals max: passes
        ({"max": "29m59s"}, Status.FAIL),
        ({"warn": "20m", "max": "30m"}, Status.WARN),
        ({"warn": "30m", "max": "1h"}, Status.PASS),
        ({"warn": "29m"}, Status.WARN),
    ],
)
def test_freshness_value_equal_to_max_passes_and_above_fails(
    thresholds: dict[str, str], status: Status
) -> None:
    check = {"kind": "freshness", "quantile": "p50", **thresholds}
    assert evaluate(plan(check), FRESHNESS_SAMPLE, AT).status is status


def test_freshness_reports_where_its_sample_came_from() -> None:
    result = evaluate(plan({"kind": "freshness", "max": "1h"}), FRESHNESS_SAMPLE, AT)
    details = to_object(result)["details"]
    assert details == {
        "p50": 1800.0,
        "p90": 3000.0,
        "p99": 3000.0,
        "max": 3000.0,
        "future": 0,
        "future_ahead_seconds": None,
        "max_future_seconds": 60.0,
        "population": "offline",
        "asked": 7,
        "found": 6,
        "decode_errors": 0,
    }


def test_freshness_without_any_timestamp_is_an_error() -> None:
    result = evaluate(
        plan({"kind": "freshness", "max": "1h"}), online(missing(1), entity(2, revenue=ABSENT)), AT
    )
    assert (result.status, result.value) == (Status.ERROR, None)
    assert reason(result.details) == (
        "none of the 2 sampled entities has a timestamp in the online store"
    )


def test_an_entity_from_the_future_is_left_out_of_the_ages_and_fails_freshness() -> None:
    """One entity 10d 15h ahead of the scheduled time among day-old ones: the ages stay a day,
    never negative, and the check fails with the count and how far ahead."""
    sample = online(
        entity(1, revenue=value(age=DAY)),
        entity(2, revenue=value(age=DAY)),
        entity(3, revenue=value(age=-(10 * DAY + 15 * HOUR))),
    )
    result = evaluate(plan({"kind": "freshness", "max": "2d"}), sample, AT)
    assert isinstance(result.details, FreshnessDetails)
    assert (result.value, result.status, result.sample_size) == (86400.0, Status.FAIL, 2)
    assert (result.details.future, result.details.future_ahead) == (1, 918000.0)
    assert result.details.reason == (
        "1 entity with an event time in the future, up to 1w3d15h ahead "
        "(more than max_future 1m after the scheduled time)"
    )


@pytest.mark.parametrize(
    ("ahead", "future", "value"),
    [(timedelta(seconds=60), 0, 0.0), (timedelta(seconds=61), 1, None)],
)
def test_an_event_time_within_max_future_is_age_zero_and_beyond_it_future(
    ahead: timedelta, future: int, value: float | None
) -> None:
    """The default max_future is 1m: 60 s ahead is clock jitter (age 0, a pass), 61 s is not."""
    sample = online(entity(1, revenue=value_of(ahead)))
    result = evaluate(plan({"kind": "freshness", "max": "1h"}), sample, AT)
    assert isinstance(result.details, FreshnessDetails)
    assert (result.value, result.details.future) == (value, future)
    assert result.status is (Status.FAIL if future else Status.PASS)


def test_max_future_widens_the_tolerance_for_clock_jitter() -> None:
    """With max_future 5m, a value 4 minutes ahead counts as age 0."""
    sample = online(entity(1, revenue=value_of(4 * MIN)))
    result = evaluate(plan({"kind": "freshness", "max": "1h", "max_future": "5m"}), sample, AT)
    assert (result.value, result.status) == (0.0, Status.PASS)


def value_of(ahead: timedelta) -> FeatureReading:
    """A value whose event time is `ahead` after the scheduled time."""
    return value(age=-ahead)


# --- freshness, offline -----------------------------------------------------------------------


def measured(
    newest: object, future: int = 0, furthest: object = None, column: str = "event_timestamp"
) -> OfflineObservation:
    """What the offline probe measures for a freshness check with the default max_future."""
    return offline(
        {
            MaxTimestamp(column, MIN): newest,  # type: ignore[dict-item]  # whatever the test plants: a time, None or a wrong type
            FutureCount(column, MIN): future,
            MaxTimestamp(column): furthest if furthest is not None else newest,  # type: ignore[dict-item]  # (the same)
        }
    )


def test_offline_freshness_is_the_age_of_the_newest_row() -> None:
    planned = plan({"kind": "freshness", "max": "1d", "target": "offline"}, timestamp="ts")
    result = evaluate(planned, measured(AT - 2 * HOUR, column="ts"), AT)
    assert (result.value, result.status, result.sample_size) == (7200.0, Status.PASS, None)
    assert to_object(result)["details"] == {
        "p50": 7200.0,
        "p90": 7200.0,
        "p99": 7200.0,
        "max": 7200.0,
        "newest_event_time": "2024-06-01T10:00:00Z",
        "future": 0,
        "future_ahead_seconds": None,
        "max_future_seconds": 60.0,
    }


def test_offline_freshness_one_second_past_max_fails() -> None:
    planned = plan({"kind": "freshness", "max": "2h", "target": "offline"})
    at_max = measured(AT - 2 * HOUR)
    past_max = measured(AT - 2 * HOUR - timedelta(seconds=1))
    assert evaluate(planned, at_max, AT).status is Status.PASS
    assert evaluate(planned, past_max, AT).status is Status.FAIL


def test_offline_rows_from_the_future_fail_freshness_with_their_count() -> None:
    """The newest row not from the future is a day old; one row 10d 15h ahead fails the check,
    whose value stays the day (never a negative age)."""
    planned = plan({"kind": "freshness", "max": "2d", "target": "offline"})
    observation = measured(AT - DAY, future=1, furthest=AT + 10 * DAY + 15 * HOUR)
    result = evaluate(planned, observation, AT)
    assert (result.value, result.status) == (86400.0, Status.FAIL)
    details = to_object(result)["details"]
    assert isinstance(details, dict)
    assert (details["future"], details["future_ahead_seconds"]) == (1, 918000.0)
    assert details["reason"] == (
        "1 row with an event time in the future, up to 1w3d15h ahead "
        "(more than max_future 1m after the scheduled time)"
    )


def test_offline_rows_all_from_the_future_fail_without_an_age() -> None:
    planned = plan({"kind": "freshness", "max": "2d", "target": "offline"})
    result = evaluate(planned, measured(None, future=3, furthest=AT + HOUR), AT)
    assert (result.value, result.status) == (None, Status.FAIL)


@pytest.mark.parametrize(
    ("observation", "message"),
    [
        (offline({}), "features.user_stats has no rows with an event time"),
        (measured(None), "features.user_stats has no rows with an event time"),
        (measured(1717243200), "event_timestamp is not a timestamp: 1717243200"),
        (
            offline(
                unavailable={MaxTimestamp("event_timestamp"): "column event_timestamp is gone"}
            ),
            "column event_timestamp is gone",
        ),
    ],
)
def test_offline_freshness_that_cannot_be_measured_is_an_error_with_its_reason(
    observation: OfflineObservation, message: str
) -> None:
    planned = plan({"kind": "freshness", "max": "1d", "target": "offline"})
    result = evaluate(planned, observation, AT)
    assert (result.status, reason(result.details)) == (Status.ERROR, message)


# --- coverage ---------------------------------------------------------------------------------

COVERAGE_SAMPLE = online(
    healthy(1),
    missing(2),
    entity(3, revenue=undecodable(), purchases=value(), active_days=value()),
    entity(4, revenue=value(), active_days=value()),  # purchases never written
    entity(5, revenue=value(math.nan), purchases=value(), active_days=value()),
    entity(6, revenue=value(), purchases=value(), active_days=null()),
    healthy(7, age=25 * HOUR),  # older than the TTL of 1d
    healthy(8, age=23 * HOUR),
    # a feature without its own time takes the entity's (the newest of the others)
    entity(9, revenue=value(age=None), purchases=value(), active_days=value()),
    entity(10, revenue=value(age=None), purchases=value(age=None), active_days=value(age=None)),
)


def test_coverage_counts_each_uncovered_request_under_its_reason() -> None:
    """Covered: 1, 8 and 9, so 3 of 10. Wilson 3/10: 0.107791 to 0.603222."""
    result = evaluate(plan({"kind": "coverage", "min": 0.95}), COVERAGE_SAMPLE, AT)
    assert isinstance(result.details, CoverageDetails)
    assert (result.value, result.sample_size, result.status) == (0.3, 10, Status.FAIL)
    assert dict(result.details.uncovered) == {
        "missing_key": 1,
        "undecodable": 1,
        "absent": 1,
        "null": 2,
        "future": 0,
        "stale": 2,
    }
    assert (result.details.covered, result.details.sampled) == (3, 10)
    assert result.details.interval.low == pytest.approx(0.107791267406, abs=1e-6)
    assert result.details.interval.high == pytest.approx(0.603221852539, abs=1e-6)
    assert result.details.max_age_seconds == 86400.0
    assert result.details.required == ("revenue", "purchases", "active_days")


def test_coverage_names_the_first_reason_only() -> None:
    """Undecodable, absent, null and stale at once: counted once, as undecodable."""
    worst_case = entity(1, revenue=undecodable(), active_days=null(age=2 * DAY))
    result = evaluate(plan({"kind": "coverage", "min": 0.9}), online(worst_case), AT)
    assert isinstance(result.details, CoverageDetails)
    assert dict(result.details.uncovered) == {
        "missing_key": 0,
        "undecodable": 1,
        "absent": 0,
        "null": 0,
        "future": 0,
        "stale": 0,
    }


@pytest.mark.parametrize(
    ("age", "covered"),
    [(DAY, True), (DAY + timedelta(seconds=1), False), (HOUR, True)],
)
def test_coverage_max_age_defaults_to_the_ttl(age: timedelta, covered: bool) -> None:
    result = evaluate(plan({"kind": "coverage", "min": 0.9}), online(healthy(1, age=age)), AT)
    assert result.value == (1.0 if covered else 0.0)


@pytest.mark.parametrize(
    ("age", "covered"), [(30 * MIN, True), (30 * MIN + timedelta(seconds=1), False)]
)
def test_coverage_max_age_replaces_the_ttl(age: timedelta, covered: bool) -> None:
    planned = plan({"kind": "coverage", "min": 0.9, "max_age": "30m"})
    result = evaluate(planned, online(healthy(1, age=age)), AT)
    assert isinstance(result.details, CoverageDetails)
    assert result.details.max_age_seconds == 1800.0
    assert result.value == (1.0 if covered else 0.0)


@pytest.mark.parametrize(
    ("ahead", "reason"), [(timedelta(seconds=60), None), (timedelta(seconds=61), "future")]
)
def test_coverage_never_counts_a_value_from_the_future_as_served(
    ahead: timedelta, reason: str | None
) -> None:
    """A required feature more than max_future (1m) ahead of the scheduled time is no valid
    served value: not covered, under its own reason; within 1m it is covered."""
    ahead_feature = entity(1, revenue=value_of(ahead), purchases=value(), active_days=value())
    result = evaluate(plan({"kind": "coverage", "min": 0.9}), online(ahead_feature), AT)
    assert isinstance(result.details, CoverageDetails)
    assert result.value == (1.0 if reason is None else 0.0)
    assert result.details.uncovered["future"] == (0 if reason is None else 1)


def test_coverage_stale_is_judged_per_required_feature() -> None:
    """The entity's newest time is fresh, but one required feature is two days old."""
    old_feature = entity(1, revenue=value(), purchases=value(age=2 * DAY), active_days=value())
    result = evaluate(plan({"kind": "coverage", "min": 0.9}), online(old_feature), AT)
    assert isinstance(result.details, CoverageDetails)
    assert result.details.uncovered["stale"] == 1


def test_coverage_requires_only_the_features_it_names() -> None:
    """Only revenue is required: nulls, absences and stale values elsewhere do not count."""
    sample = online(
        entity(1, revenue=value(), purchases=null()),
        entity(2, revenue=value(), active_days=value(age=3 * DAY)),
        entity(3, revenue=null()),
        entity(4, purchases=value()),
    )
    result = evaluate(plan({"kind": "coverage", "min": 0.5, "features": ["revenue"]}), sample, AT)
    assert isinstance(result.details, CoverageDetails)
    assert (result.value, result.status) == (0.5, Status.PASS)
    assert (result.details.uncovered["null"], result.details.uncovered["absent"]) == (1, 1)
    assert result.details.required == ("revenue",)


def test_coverage_equal_to_min_passes() -> None:
    """19 of 20 is 0.95: at min, not below it, so it passes min and only warns."""
    sample = online(*(healthy(i) for i in range(19)), missing(19))
    result = evaluate(plan({"kind": "coverage", "warn": 0.98, "min": 0.95}), sample, AT)
    assert (result.value, result.status) == (0.95, Status.WARN)
    assert isinstance(result.details, CoverageDetails)
    assert result.details.interval.low == pytest.approx(0.763868806553, abs=1e-6)
    assert result.details.interval.high == pytest.approx(0.991118551199, abs=1e-6)


def test_coverage_of_an_empty_population_is_an_error() -> None:
    result = evaluate(plan({"kind": "coverage", "min": 0.9}), online(population="online"), AT)
    assert (result.status, reason(result.details)) == (
        Status.ERROR,
        "the online population had no entities to sample",
    )


def test_coverage_json_names_its_population_and_reasons() -> None:
    sample = online(healthy(1), missing(2), population="query", decode_errors=1)
    shown = to_object(evaluate(plan({"kind": "coverage", "min": 0.9}), sample, AT))
    details = shown["details"]
    assert isinstance(details, dict)
    assert shown["value"] == 0.5
    assert set(details) == {
        "covered",
        "sampled",
        "ci_low",
        "ci_high",
        "max_age_seconds",
        "required_features",
        "uncovered",
        "population",
        "asked",
        "found",
        "decode_errors",
    }
    assert (details["population"], details["asked"], details["found"]) == ("query", 2, 1)
    assert details["decode_errors"] == 1


# --- null rate, online ------------------------------------------------------------------------

NULL_SAMPLE = online(
    entity(1, revenue=value(1.0)),
    entity(2, revenue=value(2.0)),
    entity(3, revenue=null()),
    entity(4, revenue=value(math.nan)),
    entity(5, purchases=value(3)),  # revenue never written: absent
    entity(6, revenue=value(0.0)),  # zero is a value
    missing(7),  # not in the store: coverage counts it, null rate does not
    entity(8, revenue=undecodable()),  # a value that did not decode is not a null
)


def test_online_null_rate_counts_null_nan_and_absent_over_the_entities_found() -> None:
    """Null (3), NaN (4) and absent (5) over the 7 entities found: 3/7."""
    result = evaluate(plan({"kind": "null_rate", "max": 0.5}, "revenue"), NULL_SAMPLE, AT)
    assert isinstance(result.details, NullRateDetails)
    assert result.value == pytest.approx(3 / 7)
    assert (result.details.nulls, result.details.absent, result.details.rows) == (2, 1, 7)
    assert result.sample_size == 7
    assert result.details.interval is not None
    assert result.details.interval.low == pytest.approx(0.158219855251, abs=1e-6)
    assert result.details.interval.high == pytest.approx(0.749541635472, abs=1e-6)
    assert result.status is Status.PASS


def test_online_null_rate_is_per_feature() -> None:
    """Only entity 5 has purchases: the other six found entities lack it, 6/7."""
    result = evaluate(plan({"kind": "null_rate", "max": 0.5}, "purchases"), NULL_SAMPLE, AT)
    assert result.feature == "purchases"
    assert result.value == pytest.approx(6 / 7)
    assert result.status is Status.FAIL


def test_online_null_rate_json_is_a_fraction_with_its_interval() -> None:
    shown = to_object(evaluate(plan({"kind": "null_rate", "max": 0.5}, "revenue"), NULL_SAMPLE, AT))
    assert shown["check"] == "user_stats.null_rate.revenue@online"
    assert shown["threshold"] == {"max": 0.5, "unit": "ratio"}
    details = shown["details"]
    assert isinstance(details, dict)
    assert (details["nulls"], details["rows"], details["absent"]) == (2, 7, 1)
    assert (details["asked"], details["found"]) == (8, 7)
    low, high = details["ci_low"], details["ci_high"]
    assert isinstance(low, float)
    assert isinstance(high, float)
    assert 0.0 <= low <= 3 / 7 <= high <= 1.0


@pytest.mark.parametrize(
    ("nulls", "status"), [(0, Status.PASS), (1, Status.WARN), (2, Status.FAIL)]
)
def test_online_null_rate_thresholds(nulls: int, status: Status) -> None:
    """Out of 100: 0.01 equals max (warns, above warn 0.005), 0.02 fails."""
    sample = online(
        *(entity(i, revenue=null()) for i in range(nulls)),
        *(entity(i, revenue=value()) for i in range(nulls, 100)),
    )
    planned = plan({"kind": "null_rate", "warn": 0.005, "max": 0.01}, "revenue")
    assert evaluate(planned, sample, AT).status is status


def test_online_null_rate_with_nobody_found_is_an_error() -> None:
    result = evaluate(plan({"kind": "null_rate", "max": 0.1}, "revenue"), online(missing(1)), AT)
    assert (result.status, reason(result.details)) == (
        Status.ERROR,
        "none of the 1 sampled entities is in the online store",
    )


# --- null rate, offline -----------------------------------------------------------------------


def offline_null_rate(window: str | None = None) -> dict[str, object]:
    check: dict[str, object] = {"kind": "null_rate", "max": 0.01, "target": "offline"}
    return check if window is None else {**check, "window": window}


def test_offline_null_rate_is_nulls_over_rows_in_the_window() -> None:
    """3 nulls in 200 rows of the last day (the TTL): 0.015, above max 0.01."""
    observation = offline({RowCount(DAY): 200, NullCount("revenue", DAY): 3})
    result = evaluate(plan(offline_null_rate(), "revenue"), observation, AT)
    assert (result.value, result.status, result.sample_size) == (0.015, Status.FAIL, 200)
    assert result.details == NullRateDetails(
        nulls=3, rows=200, interval=None, window_seconds=86400.0
    )
    assert to_object(result)["details"] == {"nulls": 3, "rows": 200, "window_seconds": 86400.0}


def test_offline_null_rate_uses_the_checks_own_window() -> None:
    observation = offline(
        {
            RowCount(DAY): 200,
            NullCount("revenue", DAY): 100,
            RowCount(2 * HOUR): 50,
            NullCount("revenue", 2 * HOUR): 0,
        }
    )
    result = evaluate(plan(offline_null_rate("2h"), "revenue"), observation, AT)
    assert (result.value, result.status) == (0.0, Status.PASS)


def test_offline_null_rate_of_no_rows_is_an_error_not_zero() -> None:
    observation = offline({RowCount(DAY): 0, NullCount("revenue", DAY): 0})
    result = evaluate(plan(offline_null_rate(), "revenue"), observation, AT)
    assert (result.status, reason(result.details)) == (
        Status.ERROR,
        "features.user_stats has no rows in the last 1d to measure",
    )


def test_offline_null_rate_of_a_dropped_column_is_an_error_with_its_reason() -> None:
    observation = offline(
        {RowCount(DAY): 10}, unavailable={NullCount("revenue", DAY): "no column revenue"}
    )
    result = evaluate(plan(offline_null_rate(), "revenue"), observation, AT)
    assert (result.status, reason(result.details)) == (Status.ERROR, "no column revenue")


def test_offline_null_rate_without_its_counts_is_an_error() -> None:
    result = evaluate(plan(offline_null_rate(), "revenue"), offline({RowCount(DAY): 10}), AT)
    assert (result.status, reason(result.details)) == (
        Status.ERROR,
        "no row or null count was measured for revenue",
    )


# --- schema drift, offline --------------------------------------------------------------------

COLUMNS = (
    Column("user_id", "int", "BIGINT"),
    Column("event_timestamp", "timestamp", "TIMESTAMP"),
    Column("created_ts", "timestamp", "TIMESTAMP"),
    Column("revenue", "string", "VARCHAR"),  # declared float: retyped
    Column("purchases", "int", "INTEGER"),  # declared int64: same family, not retyped
    Column("legacy_score", "float", "DOUBLE"),  # declared nowhere: added
    # active_days is gone: removed
)
OFFLINE_SOURCE = {"store": "warehouse", "table": "features.user_stats", "ingested_at": "created_ts"}


def test_offline_schema_drift_reports_added_removed_and_retyped_columns() -> None:
    result = evaluate(
        plan({"kind": "schema_drift"}, offline=OFFLINE_SOURCE), offline(columns=COLUMNS), AT
    )
    assert result.details == SchemaDriftDetails(
        added=("legacy_score",),
        removed=("active_days",),
        retyped=(Retyped("revenue", "float", "VARCHAR"),),
        counted_added=True,
    )
    assert (result.value, result.status, result.target) == (3.0, Status.FAIL, "offline")


def test_offline_schema_drift_may_allow_added_columns() -> None:
    result = evaluate(
        plan({"kind": "schema_drift", "allow_added": True, "max": 2}, offline=OFFLINE_SOURCE),
        offline(columns=COLUMNS),
        AT,
    )
    assert isinstance(result.details, SchemaDriftDetails)
    assert result.details.added == ("legacy_score",)  # still reported, not counted
    assert (result.value, result.status) == (2.0, Status.PASS)


def test_offline_schema_drift_of_a_matching_table_is_zero() -> None:
    matching = (
        *COLUMNS[:3],
        Column("revenue", "float", "DOUBLE"),
        COLUMNS[4],
        Column("active_days", "int", "BIGINT"),
    )
    result = evaluate(
        plan({"kind": "schema_drift"}, offline=OFFLINE_SOURCE), offline(columns=matching), AT
    )
    assert (result.value, result.status) == (0.0, Status.PASS)


def test_offline_schema_drift_checks_join_keys_by_their_declared_family() -> None:
    """user_id declared int64 but stored as text: retyped. Undeclared key types are not checked."""
    text_key = (Column("user_id", "string", "VARCHAR"), *COLUMNS[1:])
    typed = evaluate(
        plan(
            {"kind": "schema_drift", "max": 10},
            offline=OFFLINE_SOURCE,
            entity_types={"user_id": "int64"},
        ),
        offline(columns=text_key),
        AT,
    )
    untyped = evaluate(
        plan({"kind": "schema_drift", "max": 10}, offline=OFFLINE_SOURCE),
        offline(columns=text_key),
        AT,
    )
    assert isinstance(typed.details, SchemaDriftDetails)
    assert isinstance(untyped.details, SchemaDriftDetails)
    assert Retyped("user_id", "int", "VARCHAR") in typed.details.retyped
    assert [r.column for r in untyped.details.retyped] == ["revenue"]


def test_offline_schema_drift_expects_timestamp_and_ingestion_columns() -> None:
    without_times = tuple(c for c in COLUMNS if c.family != "timestamp")
    result = evaluate(
        plan({"kind": "schema_drift", "max": 10}, offline=OFFLINE_SOURCE),
        offline(columns=without_times),
        AT,
    )
    assert isinstance(result.details, SchemaDriftDetails)
    assert result.details.removed == ("active_days", "created_ts", "event_timestamp")


@pytest.mark.parametrize(
    ("thresholds", "status"),
    [
        ({"warn": 1, "max": 3}, Status.WARN),
        ({"warn": 3, "max": 3}, Status.PASS),
        ({"max": 2}, Status.FAIL),
    ],
)
def test_offline_schema_drift_thresholds_count_changes(
    thresholds: dict[str, int], status: Status
) -> None:
    result = evaluate(
        plan({"kind": "schema_drift", **thresholds}, offline=OFFLINE_SOURCE),
        offline(columns=COLUMNS),
        AT,
    )
    assert (result.value, result.status) == (3.0, status)


def test_offline_schema_drift_without_columns_is_an_error() -> None:
    result = evaluate(plan({"kind": "schema_drift"}), offline(columns=()), AT)
    assert (result.status, reason(result.details)) == (
        Status.ERROR,
        "no columns could be read for features.user_stats",
    )


def test_schema_drift_json_lists_each_change() -> None:
    result = evaluate(
        plan({"kind": "schema_drift"}, offline=OFFLINE_SOURCE), offline(columns=COLUMNS), AT
    )
    assert to_object(result)["details"] == {
        "added": ["legacy_score"],
        "removed": ["active_days"],
        "retyped": [{"column": "revenue", "expected": "float", "found": "VARCHAR"}],
        "counted_added": True,
    }


# --- schema drift, online ---------------------------------------------------------------------

SCHEMA_SAMPLE = online(
    entity(1, revenue=value(), purchases=value()),
    entity(2, revenue=value()),  # purchases missing here, but present in entity 1
    missing(3),  # lacks everything, and says nothing about the schema
    undeclared=frozenset({"old_revenue", "zz_debug"}),
)


def test_online_schema_drift_reports_undeclared_fields_and_features_never_stored() -> None:
    result = evaluate(plan({"kind": "schema_drift", "target": "online"}), SCHEMA_SAMPLE, AT)
    assert result.details == SchemaDriftDetails(
        added=("old_revenue", "zz_debug"), removed=("active_days",), retyped=()
    )
    assert (result.value, result.sample_size, result.status) == (3.0, 2, Status.FAIL)


def test_online_schema_drift_may_allow_undeclared_fields() -> None:
    planned = plan({"kind": "schema_drift", "target": "online", "allow_added": True, "max": 1})
    result = evaluate(planned, SCHEMA_SAMPLE, AT)
    assert (result.value, result.status) == (1.0, Status.PASS)


def test_online_schema_drift_without_any_entity_found_is_an_error() -> None:
    result = evaluate(plan({"kind": "schema_drift", "target": "online"}), online(missing(1)), AT)
    assert result.status is Status.ERROR


# --- evaluate ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "check",
    [
        {"kind": "freshness", "max": "1h"},
        {"kind": "coverage", "min": 0.9},
        {"kind": "null_rate", "feature": "revenue", "max": 0.1},
        {"kind": "schema_drift"},
    ],
)
def test_a_probe_failure_is_an_error_result_of_every_kind(check: dict[str, object]) -> None:
    failure = ProbeFailure("redis_prod", "user_stats", "connection refused")
    result = evaluate(plan(check), failure, AT)
    assert (result.status, result.value, result.sample_size) == (Status.ERROR, None, None)
    assert result.details == ErrorDetails("connection refused")


def test_an_error_result_keeps_its_identity_and_threshold() -> None:
    planned = plan(
        {
            "kind": "freshness",
            "warn": "30m",
            "max": "1h",
            "severity": "P1",
            "labels": {"tier": "1"},
        },
        labels={"team": "growth"},
    )
    shown = to_object(evaluate(planned, ProbeFailure("redis_prod", "user_stats", "timed out"), AT))
    assert shown == {
        "check": "user_stats.freshness@online",
        "kind": "freshness",
        "feature_view": "user_stats",
        "feature": None,
        "store": "redis_prod",
        "target": "online",
        "status": "error",
        "severity": "P1",
        "value": None,
        "threshold": {"max": 3600.0, "warn": 1800.0, "unit": "seconds"},
        "sample_size": None,
        "details": {"reason": "timed out"},
        "labels": {"team": "growth", "tier": "1"},
    }
    json.dumps(shown)


def test_coverage_handed_an_offline_observation_is_an_error() -> None:
    result = evaluate(plan({"kind": "coverage", "min": 0.9}), offline(), AT)
    assert (result.status, reason(result.details)) == (
        Status.ERROR,
        "coverage cannot be measured offline",
    )


def test_a_naive_scheduled_time_is_refused() -> None:
    with pytest.raises(ValueError, match="scheduled_at must be timezone-aware"):
        evaluate(
            plan({"kind": "freshness", "max": "1h"}), FRESHNESS_SAMPLE, AT.replace(tzinfo=None)
        )


def test_a_nan_value_is_null_and_a_missing_reading_is_absent() -> None:
    assert FeatureReading(FeatureState.VALUE, math.nan).is_null
    assert not FeatureReading(FeatureState.VALUE, 0.0).is_null
    assert EntityReading((1,), True).reading("revenue") is ABSENT
    assert ABSENT.is_null


# --- the offline kinds beyond the basics (their arithmetic: test_offline_kinds.py) --------------

INGESTED = {"store": "warehouse", "table": "features.user_stats", "ingested_at": "created_ts"}


@pytest.mark.parametrize(
    "check",
    [
        {"kind": "late_arrivals", "watermark": "10m", "max": 0.05},
        {"kind": "row_count", "min": 1},
        {"kind": "duplicates", "max": 0.0},
        {"kind": "range", "feature": "revenue", "max": 0.0},
    ],
)
def test_a_probe_failure_is_an_error_result_of_every_offline_kind(
    check: dict[str, object],
) -> None:
    failure = ProbeFailure("warehouse", "user_stats", "table features.user_stats does not exist")
    result = evaluate(plan(check, offline=INGESTED), failure, AT)
    assert (result.status, result.target) == (Status.ERROR, "offline")
    assert result.details == ErrorDetails("table features.user_stats does not exist")


def test_an_offline_only_kind_handed_an_online_observation_is_an_error() -> None:
    planned = plan({"kind": "row_count", "min": 1})
    result = evaluate(planned, online(healthy(1)), AT)
    assert (result.status, reason(result.details)) == (
        Status.ERROR,
        "row_count cannot be measured online",
    )
