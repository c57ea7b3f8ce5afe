"""Recorded runs read back as the `RunResult` the checks returned (what a report is rendered
from on demand), on a real SQLite state database: every kind of details survives the trip."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

import pytest

from alerts.report import render_report
from checks.result import (
    AnomalyDetails,
    CheckResult,
    CoverageDetails,
    Details,
    DriftBin,
    DriftDetails,
    DuplicateDetails,
    ErrorDetails,
    FreshnessDetails,
    Interval,
    LateArrivalDetails,
    NullRateDetails,
    RangeDetails,
    Retyped,
    RowCountDetails,
    RunResult,
    SampleInfo,
    SchemaDriftDetails,
    SkewDetails,
    SkewExample,
    SodaDetails,
    Status,
    Threshold,
)
from monitor.state import StateError, StateStore

T0 = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
SAMPLE = SampleInfo("offline", 2000, 1990, 3)
MAX_SECONDS = Threshold("max", 3600.0, 1800.0, "seconds")

DETAILS: dict[str, tuple[Details, Threshold]] = {
    "freshness": (
        FreshnessDetails(30.0, 90.5, 120.0, 4000.25, newest=T0 - timedelta(hours=1), sample=SAMPLE),
        MAX_SECONDS,
    ),
    "coverage": (
        CoverageDetails(
            covered=1900,
            sampled=2000,
            interval=Interval(0.94, 0.96),
            max_age_seconds=86400.0,
            required=("revenue", "orders"),
            uncovered=MappingProxyType({"missing_key": 60, "stale": 40}),
            sample=SAMPLE,
        ),
        Threshold("min", 0.95, None, "ratio"),
    ),
    "null_rate": (
        NullRateDetails(
            nulls=4, rows=1990, interval=Interval(0.001, 0.005), absent=2, sample=SAMPLE
        ),
        Threshold("max", 0.01, 0.005, "ratio"),
    ),
    "schema_drift": (
        SchemaDriftDetails(
            added=("new_col",),
            removed=("old_col",),
            retyped=(Retyped("price", "float", "string"),),
            counted_added=False,
            baseline_at=T0 - timedelta(days=3),
            baseline_captured=True,
        ),
        Threshold("max", 0.0, None, "count"),
    ),
    "late_arrivals": (
        LateArrivalDetails(12, 1000, 3, 600.0, 86400.0, 30.0, 900.0, 1200.5),
        Threshold("max", 0.05, None, "ratio"),
    ),
    "row_count": (
        RowCountDetails(1000, 86400.0, history=7, reference=1200.0, change=-0.1667),
        Threshold("max", 2000.0, None, "count", fail_min=100.0, warn_min=500.0),
    ),
    "duplicates": (
        DuplicateDetails(5, 1000, 995, ("user_id",), 86400.0),
        Threshold("max", 0.0, None, "count"),
    ),
    "range": (
        RangeDetails(
            rows=1990,
            nan=1,
            infinite=0,
            negative=2,
            below_min=None,
            above_max=3,
            min=-1.5,
            max=1e9,
            mean=42.25,
            min_value=None,
            max_value=1e6,
            interval=Interval(0.001, 0.006),
            sample=SAMPLE,
        ),
        Threshold("max", 0.01, None, "ratio"),
    ),
    "skew": (
        SkewDetails(
            mismatched=3,
            compared=1500,
            without_offline_row=7,
            interval=Interval(0.0007, 0.0058),
            per_feature=MappingProxyType({"revenue": 3}),
            examples=(
                SkewExample(
                    key=(42, "eu"),
                    online_time=T0 - timedelta(minutes=5),
                    offline_time=T0 - timedelta(minutes=6),
                    differences=(("revenue", 1.5, None), ("segment", "a", "b")),
                ),
            ),
            abs_tol=1e-9,
            rel_tol=1e-6,
            source="warehouse.user_stats",
            sample=SAMPLE,
        ),
        Threshold("max", 0.01, None, "ratio"),
    ),
    "distribution_drift": (
        DriftDetails(
            psi=0.31,
            ks=None,
            categorical=True,
            reference_rows=5000,
            current_rows=900,
            reference_since=T0 - timedelta(days=30),
            reference_until=T0 - timedelta(days=1),
            epsilon=1e-4,
            bins=(DriftBin("a", 0.5, 0.25), DriftBin("other", 0.5, 0.75)),
            sample=None,
            current_since=T0 - timedelta(days=1),
            current_until=T0,
        ),
        Threshold("max", 0.25, 0.1, "score"),
    ),
    "anomaly": (
        AnomalyDetails(
            of="freshness",
            current=120.0,
            current_at=T0,
            history=14,
            min_history=7,
            median=100.0,
            mad=5.0,
            z=2.7,
            scale="mad",
            direction="both",
        ),
        Threshold("max", 3.5, 3.0, "score"),
    ),
    "soda": (
        SodaDetails(
            soda_check="columns.revenue.checks.missing",
            name=None,
            type="missing",
            column="revenue",
            outcome="failed",
            threshold="must be < 5",
            diagnostics=MappingProxyType({"missing_count": 7, "ratio": 0.5, "note": "x"}),
            dataset="warehouse/user_stats",
            contract_line=12,
            errors=("one",),
            soda_version="4.0.1",
        ),
        Threshold("max", 0.0, None, "number"),
    ),
}


def result(kind: str, details: Details, threshold: Threshold) -> CheckResult:
    return CheckResult(
        check=f"user_stats.{kind}@online",
        kind=kind,
        feature_view="user_stats",
        feature=None,
        store="redis_prod",
        target="online",
        status=Status.FAIL,
        severity="P2",
        value=0.5,
        threshold=threshold,
        sample_size=2000,
        details=details,
        labels=MappingProxyType({"team": "growth"}),
    )


def run_of(*results: CheckResult, run_id: str = "20261126T060000Z-abcd1234") -> RunResult:
    return RunResult(run_id, T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=2), results)


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore(f"sqlite:///{tmp_path / 'state.db'}") as store:
        store.migrate()
        yield store


@pytest.mark.parametrize("kind", sorted(DETAILS))
def test_a_recorded_result_reads_back_equal(state: StateStore, kind: str) -> None:
    """Each kind of details, recorded and read back, equals the result the check returned."""
    run = run_of(result(kind, *DETAILS[kind]))
    state.record_run(run)
    assert state.recorded_run(run.run_id) == run


def test_a_freshness_result_with_future_values_reads_back_equal(state: StateStore) -> None:
    """The count of future values, how far ahead the furthest is and the tolerance survive
    the state database."""
    future = FreshnessDetails(
        None, None, None, None, sample=SAMPLE, future=3, future_ahead=918000.0,
        max_future_seconds=60.0,
    )  # fmt: skip
    run = run_of(result("freshness", future, MAX_SECONDS))
    state.record_run(run)
    assert state.recorded_run(run.run_id) == run


def test_an_error_result_reads_back_with_its_reason(state: StateStore) -> None:
    """An error result of any kind reads back as the reason it gave."""
    run = run_of(result("freshness", ErrorDetails("redis timed out"), MAX_SECONDS))
    state.record_run(run)
    assert state.recorded_run(run.run_id) == run


def test_results_read_back_in_declaration_order(state: StateStore) -> None:
    """A run of many checks reads back in the order evaluation gave them."""
    results = tuple(result(kind, *DETAILS[kind]) for kind in sorted(DETAILS, reverse=True))
    run = run_of(*results)
    state.record_run(run)
    recorded = state.recorded_run(run.run_id)
    assert recorded is not None
    assert [r.check for r in recorded.results] == [r.check for r in results]


def test_a_warn_only_threshold_renders_as_it_was(state: StateStore) -> None:
    """A threshold with only a warn bound loses its direction in the record, and the report,
    which shows no direction for it, reads the same."""
    warn_only = Threshold("min", None, 0.9, "ratio")
    run = run_of(result("coverage", DETAILS["coverage"][0], warn_only))
    state.record_run(run)
    recorded = state.recorded_run(run.run_id)
    assert recorded is not None
    assert render_report(recorded) == render_report(run)


def test_a_run_never_recorded_is_none(state: StateStore) -> None:
    assert state.recorded_run("20000101T000000Z-none") is None


def test_a_result_of_an_unknown_kind_is_a_state_error(state: StateStore) -> None:
    """A row this featmon cannot read back names the check and what was expected."""
    odd = replace(result("freshness", *DETAILS["freshness"]), kind="psi")
    run = run_of(odd)
    state.record_run(run)
    with pytest.raises(StateError, match="expected the details of a psi check"):
        state.recorded_run(run.run_id)


def test_history_until_stops_at_the_run(state: StateStore) -> None:
    """`history(until=...)` gives the values up to and including that time, newest first."""
    base = result("freshness", *DETAILS["freshness"])
    for minutes in range(3):
        at = T0 + timedelta(minutes=minutes)
        state.record_run(RunResult(f"r{minutes}", at, at, at, (replace(base, value=minutes),)))
    points = state.history(base.check, 10, until=T0 + timedelta(minutes=1))
    assert [p.run_id for p in points] == ["r1", "r0"]
