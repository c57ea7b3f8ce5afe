"""One value of every type featmon stores as JSON (each kind of details in its online and
offline forms, a run, alert records, events, notifications and groups), for the test that
reads the JSON an earlier featmon wrote (`tests/data/stored_v1.json`) back into these values.

`tests/data/write_stored_v1.py` wrote that file from these values with the serializer of its
time; it is not run again (the file is what an earlier version left in a state database).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType

from alerts.lifecycle import AlertRecord
from alerts.model import AlertEvent, AlertState, Notification
from alerts.routing import Group
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

T0 = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
SAMPLE = SampleInfo("offline", 2000, 1990, 3)
MAX_SECONDS = Threshold("max", 3600.0, 1800.0, "seconds")
RATIO = Threshold("max", 0.01, 0.005, "ratio")

DETAILS: dict[str, tuple[str, Details, Threshold]] = {
    "freshness_online": (
        "freshness",
        FreshnessDetails(30.0, 90.5, 120.0, 4000.25, sample=SAMPLE),
        MAX_SECONDS,
    ),
    "freshness_offline": (
        "freshness",
        FreshnessDetails(
            30.0,
            90.5,
            120.0,
            4000.25,
            newest=T0 - timedelta(hours=1),
            future=2,
            future_ahead=918000.0,
            max_future_seconds=60.0,
        ),
        MAX_SECONDS,
    ),
    "freshness_future_online": (
        "freshness",
        FreshnessDetails(
            None,
            None,
            None,
            None,
            sample=SAMPLE,
            future=3,
            future_ahead=None,
            max_future_seconds=60.0,
        ),
        MAX_SECONDS,
    ),
    "coverage": (
        "coverage",
        CoverageDetails(
            covered=1900,
            sampled=2000,
            interval=Interval(0.94, 0.96),
            max_age_seconds=86400.0,
            required=("revenue", "orders"),
            uncovered=MappingProxyType({"missing_key": 60, "stale": 40}),
            sample=SAMPLE,
        ),
        Threshold("min", 0.95, 0.98, "ratio"),
    ),
    "null_rate_online": (
        "null_rate",
        NullRateDetails(
            nulls=4, rows=1990, interval=Interval(0.001, 0.005), absent=2, sample=SAMPLE
        ),
        RATIO,
    ),
    "null_rate_offline": (
        "null_rate",
        NullRateDetails(nulls=3, rows=200, interval=None, window_seconds=86400.0),
        Threshold("max", 0.5, None, "ratio"),
    ),
    "schema_drift_baseline": (
        "schema_drift",
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
    "schema_drift_declared": (
        "schema_drift",
        SchemaDriftDetails(added=(), removed=("a", "b"), retyped=()),
        Threshold("max", 0.0, None, "count"),
    ),
    "late_arrivals": (
        "late_arrivals",
        LateArrivalDetails(12, 1000, 3, 600.0, 86400.0, 30.0, 900.0, 1200.5),
        Threshold("max", 0.05, None, "ratio"),
    ),
    "late_arrivals_empty": (
        "late_arrivals",
        LateArrivalDetails(0, 0, 0, 600.0, 86400.0, None, None, None),
        Threshold("max", 0.05, None, "ratio"),
    ),
    "row_count_change": (
        "row_count",
        RowCountDetails(1000, 86400.0, history=7, reference=1200.0, change=-0.1667),
        Threshold("max", 2000.0, None, "count", fail_min=100.0, warn_min=500.0),
    ),
    "row_count_unjudged": (
        "row_count",
        RowCountDetails(1000, 86400.0, history=2, reference=None, change=None, reason="few"),
        Threshold("max", 2000.0, 1500.0, "count", fail_min=100.0),
    ),
    "row_count_plain": (
        "row_count",
        RowCountDetails(216, 86400.0),
        Threshold("max", None, 1500.0, "count", fail_min=100.0, warn_min=150.0),
    ),
    "duplicates": (
        "duplicates",
        DuplicateDetails(5, 1000, 995, ("user_id", "region"), 86400.0),
        Threshold("max", 0.0, None, "count"),
    ),
    "range_online": (
        "range",
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
        RATIO,
    ),
    "range_offline": (
        "range",
        RangeDetails(
            rows=10,
            nan=0,
            infinite=1,
            negative=None,
            below_min=4,
            above_max=None,
            min=None,
            max=None,
            mean=None,
            min_value=0.5,
            max_value=None,
            window_seconds=3600.0,
        ),
        RATIO,
    ),
    "skew": (
        "skew",
        SkewDetails(
            mismatched=3,
            compared=1500,
            without_offline_row=7,
            interval=Interval(0.0007, 0.0058),
            per_feature=MappingProxyType({"revenue": 3, "segment": 1}),
            examples=(
                SkewExample(
                    key=(42, "eu"),
                    online_time=T0 - timedelta(minutes=5),
                    offline_time=T0 - timedelta(minutes=6, microseconds=250),
                    differences=(("revenue", 1.5, None), ("segment", "a", "b"), ("ok", True, 1)),
                ),
            ),
            abs_tol=1e-9,
            rel_tol=1e-6,
            source="warehouse.user_stats",
            sample=SAMPLE,
        ),
        RATIO,
    ),
    "distribution_drift_offline": (
        "distribution_drift",
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
    "distribution_drift_online": (
        "distribution_drift",
        DriftDetails(
            psi=0.02,
            ks=0.11,
            categorical=False,
            reference_rows=5000,
            current_rows=1990,
            reference_since=T0 - timedelta(days=30),
            reference_until=T0 - timedelta(days=1),
            epsilon=1e-4,
            bins=(DriftBin("(1.5, 2.5]", 0.4, 0.45),),
            sample=SAMPLE,
        ),
        Threshold("max", 0.25, 0.1, "score"),
    ),
    "anomaly": (
        "anomaly",
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
    "anomaly_unjudged": (
        "anomaly",
        AnomalyDetails(
            of="row_count",
            current=None,
            current_at=None,
            history=2,
            min_history=7,
            median=None,
            mad=None,
            z=None,
            scale=None,
            direction="up",
            reason="too few",
        ),
        Threshold("max", 3.5, None, "score"),
    ),
    "soda": (
        "soda",
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
    "error": ("freshness", ErrorDetails("redis timed out"), MAX_SECONDS),
}


def result(name: str) -> CheckResult:
    kind, details, threshold = DETAILS[name]
    return CheckResult(
        check=f"user_stats.{name}@online",
        kind=kind,
        feature_view="user_stats",
        feature=None if kind != "range" else "revenue",
        store="redis_prod",
        target="online",
        status=Status.ERROR if isinstance(details, ErrorDetails) else Status.FAIL,
        severity="P2",
        value=None if isinstance(details, ErrorDetails) else 0.5,
        threshold=threshold,
        sample_size=2000,
        details=details,
        labels=MappingProxyType({"team": "growth"}),
    )


RESULTS = {name: result(name) for name in DETAILS}
RUN = RunResult(
    "20261126T060000Z-abcd1234",
    T0,
    T0 + timedelta(seconds=1),
    T0 + timedelta(seconds=2, microseconds=500),
    tuple(RESULTS.values()),
)

LABELS = MappingProxyType({"check": "user_stats.freshness@online", "severity": "P2"})
ANNOTATIONS = MappingProxyType({"summary": "stale", "value": "4000"})
CEST = datetime(2026, 11, 26, 8, 0, tzinfo=UTC).astimezone(timezone(timedelta(hours=2)))

RECORDS = {
    "record_firing": AlertRecord(
        labels=LABELS,
        state=AlertState.FIRING,
        fail_streak=3,
        pass_streak=0,
        active_since=T0 - timedelta(minutes=10),
        started_at=T0,
        ended_at=None,
        last_notified_at=T0 + timedelta(seconds=3),
        updated_at=T0,
        annotations=ANNOTATIONS,
        report_url="http://featmon:8080/reports/r1",
    ),
    "record_resolved": AlertRecord(
        labels=LABELS,
        state=AlertState.RESOLVED,
        fail_streak=0,
        pass_streak=2,
        active_since=CEST,
        started_at=CEST,
        ended_at=T0 + timedelta(hours=1),
        last_notified_at=None,
        updated_at=T0 + timedelta(hours=1),
        annotations=MappingProxyType({}),
    ),
    "record_pending": AlertRecord(
        labels=MappingProxyType({}),
        state=AlertState.PENDING,
        fail_streak=1,
        pass_streak=0,
        active_since=T0,
        started_at=None,
        ended_at=None,
        last_notified_at=None,
        updated_at=T0,
        annotations=ANNOTATIONS,
    ),
}

FIRING = AlertEvent(LABELS, ANNOTATIONS, AlertState.FIRING, T0, None, "P2", "http://x/r1")
RESOLVED = AlertEvent(LABELS, MappingProxyType({}), AlertState.RESOLVED, CEST, T0, "P1")
EVENTS = {"event_firing": FIRING, "event_resolved": RESOLVED}

NOTIFICATIONS = {
    "notification": Notification(
        receiver="team",
        group_key='{}:{feature_view="user_stats"}',
        group_labels=MappingProxyType({"feature_view": "user_stats"}),
        alerts=(FIRING, RESOLVED),
        created_at=T0 + timedelta(microseconds=12),
        external_url="http://featmon:8080/",
        common_labels=MappingProxyType({"severity": "P2"}),
    ),
    "notification_bare": Notification("team", "k", MappingProxyType({}), (), T0),
}

GROUPS = {
    "group_waiting": Group(
        receiver="team",
        key="k1",
        labels=MappingProxyType({"feature_view": "user_stats"}),
        group_interval=timedelta(minutes=5),
        flush_at=T0 + timedelta(minutes=5),
        pending=(FIRING,),
        last_sent_at=T0 - timedelta(minutes=1),
        firing=frozenset({"abc", "def"}),
    ),
    "group_idle": Group(
        receiver="team",
        key="k2",
        labels=MappingProxyType({}),
        group_interval=timedelta(seconds=30.5),
        flush_at=None,
        pending=(),
        last_sent_at=None,
        firing=frozenset(),
    ),
}
