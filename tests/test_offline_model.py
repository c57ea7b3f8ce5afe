"""The check-file rules of the offline kinds beyond the basics (late arrivals, row count,
duplicates, range), what they plan to measure, and how their thresholds read."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from alerts.format import format_threshold
from checks.checkfile import CheckFile
from checks.errors import ConfigError
from checks.model import Check
from checks.observation import (
    DistinctKeys,
    KeyedRows,
    LatenessCount,
    MaxLateness,
    MaxTimestamp,
    NullCount,
    RowCount,
    ValueCount,
    ValueStat,
)
from checks.plan import default_target, offline_metrics, plan_view, problems_of
from checks.result import Threshold
from checks.source import load_yaml, validate
from tests.builders import make_view
from tests.test_offline_checks import view

DAY = timedelta(days=1)
INF = math.inf

# --- the check-file rules ---------------------------------------------------------------------

CHECK: TypeAdapter[Any] = TypeAdapter(Check)


def refused(check: dict[str, object]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        CHECK.validate_python(check)
    return [str(e["ctx"]["error"]) if "ctx" in e else e["msg"] for e in caught.value.errors()]


NEW_KINDS: dict[str, dict[str, object]] = {
    "late_arrivals": {"kind": "late_arrivals", "watermark": "10m", "max": 0.05},
    "row_count": {"kind": "row_count", "min": 1},
    "duplicates": {"kind": "duplicates", "max": 0},
    "range": {"kind": "range", "feature": "revenue", "max": 0},
}


@pytest.mark.parametrize("kind", ["late_arrivals", "row_count", "duplicates"])
def test_the_offline_only_kinds_refuse_the_online_target(kind: str) -> None:
    assert refused({**NEW_KINDS[kind], "target": "online"}) == [
        f"expected target `offline` ({kind} is measured on the offline store), found `online`"
    ]


@pytest.mark.parametrize(
    ("bounds", "message"),
    [
        (
            {},
            "expected at least one bound, `min`, `max`, `warn_min`, `warn_max` or `change`, "
            "found none",
        ),
        ({"min": 10, "max": 5}, "expected `min` at most `max`, found min 10 > max 5"),
        (
            {"min": 10, "warn_min": 5},
            "expected `min` at most `warn_min`, found min 10 > warn_min 5",
        ),
        (
            {"warn_max": 900, "max": 800},
            "expected `warn_max` at most `max`, found warn_max 900 > max 800",
        ),
        (
            {"warn_min": 50, "warn_max": 40},
            "expected `warn_min` at most `warn_max`, found warn_min 50 > warn_max 40",
        ),
    ],
)
def test_row_count_bounds_must_be_given_and_ordered(bounds: dict[str, int], message: str) -> None:
    assert refused({"kind": "row_count", **bounds}) == [message]


def test_row_count_bounds_may_be_equal_and_one_sided() -> None:
    check = CHECK.validate_python({"kind": "row_count", "min": 5, "warn_min": 5, "warn_max": 5})
    assert (check.min, check.warn_min, check.warn_max, check.max) == (5, 5, 5, None)


def test_late_arrivals_needs_a_watermark() -> None:
    assert refused({"kind": "late_arrivals", "max": 0.05}) == ["Field required"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"min_value": 10, "max_value": 1},
            "expected `min_value` at most `max_value`, found min_value 10 > max_value 1",
        ),
        (
            {"min_value": -1, "non_negative": True},
            "expected `min_value` of at least 0 with `non_negative: true`, found -1",
        ),
    ],
)
def test_range_bounds_must_agree(fields: dict[str, object], message: str) -> None:
    assert refused({"kind": "range", "feature": "x", "max": 0, **fields}) == [message]


def test_range_bounds_must_be_finite() -> None:
    assert refused({"kind": "range", "feature": "x", "max": 0, "max_value": INF}) == [
        "Input should be a finite number"
    ]


@pytest.mark.parametrize(
    ("kind", "sources", "expected"),
    [
        ("late_arrivals", ("online", "offline"), "offline"),
        ("row_count", ("online",), None),
        ("duplicates", ("online", "offline"), "offline"),
        ("range", ("online", "offline"), "offline"),
        ("range", ("online",), "online"),
    ],
)
def test_default_target_of_the_new_kinds(
    kind: str, sources: tuple[str, ...], expected: str | None
) -> None:
    source = make_view(
        online={"store": "redis_prod"} if "online" in sources else None,
        offline={"store": "warehouse", "table": "t"} if "offline" in sources else None,
    )
    assert default_target(CHECK.validate_python(NEW_KINDS[kind]), source) == expected


def problems(text: str) -> list[str]:
    doc = load_yaml(text, "t.yaml")
    check_file = validate(CheckFile, doc)
    return [str(doc.problem(path, message)) for path, message in problems_of(check_file)]


VIEW_YAML = """feature_views:
  - name: v
    entity: id
    ttl: 1d
    features: {amount: float, label: string}
    offline: {store: w, table: t}
    checks:
      - {kind: late_arrivals, watermark: 10m, max: 0.05}
      - {kind: range, feature: label, max: 0}
      - {kind: range, feature: amoutn, max: 0}
"""


def test_what_a_kind_needs_of_its_view_is_a_located_problem() -> None:
    assert problems(VIEW_YAML) == [
        "t.yaml:8: feature_views[0].checks[0]: expected the view's offline source to name its "
        "ingestion-time column (`offline.ingested_at`) for late_arrivals, found none",
        "t.yaml:9: feature_views[0].checks[1].feature: expected a numeric feature (int or float) "
        "for range, found 'label' of type string",
        "t.yaml:10: feature_views[0].checks[2].feature: expected a declared feature "
        "['amount', 'label'], found 'amoutn'",
    ]


def test_a_view_naming_its_ingestion_column_has_no_late_arrivals_problem() -> None:
    text = VIEW_YAML.replace("table: t}", "table: t, ingested_at: created_ts}")
    assert not [p for p in problems(text) if "late_arrivals" in p]


# --- the plan ---------------------------------------------------------------------------------


def test_check_ids_name_the_kind_and_the_feature_of_a_range() -> None:
    assert [p.id for p in plan_view(view({"table": "t"}))] == [
        "user_stats.freshness@offline",
        "user_stats.null_rate.revenue@offline",
        "user_stats.row_count@offline",
        "recent_rows",
        "user_stats.late_arrivals@offline",
        "user_stats.duplicates@offline",
        "user_stats.range.revenue@offline",
        "user_stats.range.purchases@offline",
    ]


def test_the_checks_of_a_view_share_their_metrics() -> None:
    """Null rate and range of revenue share rows and nulls in the window; both row counts and
    late arrivals share rows; 18 fixed lateness boundaries hold the 10m watermark."""
    metrics = offline_metrics(plan_view(view({"table": "t"})))
    hour = timedelta(hours=1)
    assert {m for m in metrics if isinstance(m, RowCount)} == {RowCount(DAY), RowCount(hour)}
    assert {m for m in metrics if isinstance(m, NullCount)} == {
        NullCount("revenue", DAY),
        NullCount("purchases", DAY),
    }
    assert len([m for m in metrics if isinstance(m, LatenessCount)]) == 1 + 18
    assert MaxLateness("created_ts", DAY) in metrics
    assert {KeyedRows(("user_id",), DAY), DistinctKeys(("user_id",), DAY)} <= metrics
    assert ValueCount("revenue", "below", DAY, 0.0) in metrics
    assert ValueCount("purchases", "negative", DAY) in metrics
    assert ValueCount("revenue", "negative", DAY) not in metrics
    assert ValueCount("purchases", "below", DAY, None) not in metrics
    assert {ValueStat("revenue", s, DAY) for s in ("min", "max", "mean")} <= metrics
    assert MaxTimestamp("event_timestamp") in metrics
    # newest 3 (at or before the scheduled time, future rows, of all), rows 2, nulls 2,
    # lateness 19 + max 1, keys 2, value tests 4 + 4, statistics 6
    assert len(metrics) == 43


# --- thresholds in words ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("threshold", "text"),
    [
        (Threshold("max", 300.0, None, "count", fail_min=200.0), "min 200 max 300"),
        (
            Threshold("max", 1000.0, 900.0, "count", fail_min=100.0, warn_min=150.0),
            "min 100 max 1,000 (warn min 150 max 900)",
        ),
        (Threshold("max", None, None, "count", warn_min=20.0), "warn min 20"),
        (Threshold("min", 10.0, 20.0, "count"), "min 10 (warn 20)"),
    ],
)
def test_a_two_sided_threshold_reads_as_its_bounds(threshold: Threshold, text: str) -> None:
    assert format_threshold(threshold) == text


def test_a_check_file_with_every_new_kind_loads() -> None:
    """The example of DESIGN.md section 4, with the kinds of this change, is a valid file."""
    text = """feature_views:
  - name: user_stats
    entity: user_id
    ttl: 7d
    features: {rolling_7d_revenue: float, purchase_count_30d: int}
    offline: {store: warehouse, table: features.user_stats, ingested_at: created_ts}
    checks:
      - {kind: late_arrivals, watermark: 10m, max: 0.05, severity: P3}
      - {kind: row_count, window: 1h, min: 1000, warn_min: 5000, max: 1000000}
      - {kind: duplicates, max: 0}
      - {kind: range, feature: purchase_count_30d, non_negative: true, max_value: 10000, max: 0}
"""
    check_file = validate(CheckFile, load_yaml(text, "t.yaml"))
    assert problems_of(check_file) == []
    assert [p.kind for p in plan_view(check_file.feature_views[0])] == [
        "late_arrivals",
        "row_count",
        "duplicates",
        "range",
    ]
    with pytest.raises(ConfigError, match="unknown key 'watermak'"):
        validate(CheckFile, load_yaml(text.replace("watermark", "watermak"), "t.yaml"))
