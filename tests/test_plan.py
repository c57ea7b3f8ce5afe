"""Planning: check ids, targets and stores resolved, null rates expanded per feature, and the
offline aggregates one query has to measure."""

from __future__ import annotations

from datetime import timedelta

from checks.checkfile import CheckFile
from checks.observation import FutureCount, MaxTimestamp, NullCount, RowCount
from checks.plan import PlannedCheck, offline_metrics, plan_view
from tests.builders import make_view


def plan_file(check_file: CheckFile) -> list[PlannedCheck]:
    """Every check of every view of `check_file`, planned."""
    return [
        planned
        for index, view in enumerate(check_file.feature_views)
        for planned in plan_view(view, ("feature_views", index))
    ]


def ids(checks: list[dict[str, object]], **fields: object) -> list[str]:
    return [p.id for p in plan_view(make_view(checks, **fields))]


def test_a_check_id_is_view_kind_and_target() -> None:
    assert ids([{"kind": "freshness", "max": "1h"}]) == ["user_stats.freshness@online"]


def test_the_id_names_the_target_the_check_measures() -> None:
    assert ids([{"kind": "freshness", "max": "1h", "target": "offline"}]) == [
        "user_stats.freshness@offline"
    ]
    assert ids([{"kind": "schema_drift"}]) == ["user_stats.schema_drift@offline"]


def test_a_null_rate_of_one_feature_names_it() -> None:
    assert ids([{"kind": "null_rate", "feature": "revenue", "max": 0.01}]) == [
        "user_stats.null_rate.revenue@online"
    ]


def test_a_null_rate_without_feature_is_one_check_per_declared_feature_in_order() -> None:
    planned = plan_view(make_view([{"kind": "null_rate", "max": 0.01}]))
    assert [(p.id, p.feature) for p in planned] == [
        ("user_stats.null_rate.revenue@online", "revenue"),
        ("user_stats.null_rate.purchases@online", "purchases"),
        ("user_stats.null_rate.active_days@online", "active_days"),
    ]


def test_a_name_replaces_the_derived_id() -> None:
    assert ids([{"kind": "coverage", "min": 0.9, "name": "serving_coverage"}]) == [
        "serving_coverage"
    ]
    assert ids([{"kind": "null_rate", "feature": "revenue", "max": 0.1, "name": "rev_nulls"}]) == [
        "rev_nulls"
    ]


def test_a_named_null_rate_without_feature_is_suffixed_per_feature() -> None:
    assert ids([{"kind": "null_rate", "max": 0.1, "name": "nulls"}]) == [
        "nulls.revenue",
        "nulls.purchases",
        "nulls.active_days",
    ]


def test_the_planned_check_carries_store_target_and_its_place_in_the_file() -> None:
    check_file = CheckFile.model_validate(
        {
            "feature_views": [
                make_view(name="a").model_dump(),
                make_view(
                    [{"kind": "freshness", "max": "1h"}, {"kind": "schema_drift"}], name="b"
                ).model_dump(),
            ]
        }
    )
    planned = plan_file(check_file)
    assert [(p.id, p.target, p.store, p.path, p.kind) for p in planned] == [
        (
            "b.freshness@online",
            "online",
            "redis_prod",
            ("feature_views", 1, "checks", 0),
            "freshness",
        ),
        (
            "b.schema_drift@offline",
            "offline",
            "warehouse",
            ("feature_views", 1, "checks", 1),
            "schema_drift",
        ),
    ]


def test_defaults_online_except_schema_drift_and_coverage_only_online() -> None:
    planned = plan_view(
        make_view(
            [
                {"kind": "freshness", "max": "1h"},
                {"kind": "coverage", "min": 0.9},
                {"kind": "null_rate", "feature": "revenue", "max": 0.1},
                {"kind": "schema_drift"},
            ]
        )
    )
    assert [(p.kind, p.target) for p in planned] == [
        ("freshness", "online"),
        ("coverage", "online"),
        ("null_rate", "online"),
        ("schema_drift", "offline"),
    ]


def test_an_offline_only_view_plans_offline_and_leaves_out_coverage() -> None:
    """Coverage has nowhere to run; `problems_of` reports it, the plan skips it."""
    assert ids(
        [{"kind": "freshness", "max": "1h"}, {"kind": "coverage", "min": 0.9}], online=None
    ) == ["user_stats.freshness@offline"]


def test_a_check_whose_target_the_view_lacks_is_left_out() -> None:
    assert ids([{"kind": "freshness", "max": "1h", "target": "online"}], online=None) == []


def test_labels_of_the_check_override_those_of_the_view() -> None:
    planned = plan_view(
        make_view(
            [{"kind": "freshness", "max": "1h", "labels": {"team": "ranking", "tier": "1"}}],
            labels={"team": "growth", "env": "prod"},
        )
    )
    assert planned[0].labels == {"team": "ranking", "env": "prod", "tier": "1"}


def test_offline_metrics_of_freshness_are_the_newest_event_time_and_the_future() -> None:
    """The newest event time at or before scheduled + max_future, the rows after it, and the
    newest of all (how far ahead the future goes)."""
    view = make_view([{"kind": "freshness", "max": "1h", "target": "offline"}], timestamp="ts")
    minute = timedelta(minutes=1)
    assert offline_metrics(plan_view(view)) == {
        MaxTimestamp("ts", minute),
        FutureCount("ts", minute),
        MaxTimestamp("ts"),
    }


def test_offline_null_rates_share_one_row_count_per_window() -> None:
    """Three features over the TTL (1d) and one over its own 2h window: two row counts."""
    view = make_view(
        [
            {"kind": "null_rate", "max": 0.1, "target": "offline"},
            {
                "kind": "null_rate",
                "feature": "revenue",
                "max": 0.1,
                "target": "offline",
                "window": "2h",
            },
            {
                "kind": "null_rate",
                "feature": "revenue",
                "max": 0.2,
                "target": "offline",
                "window": "120m",
            },
        ]
    )
    day, two_hours = timedelta(days=1), timedelta(hours=2)
    assert offline_metrics(plan_view(view)) == {
        RowCount(day),
        NullCount("revenue", day),
        NullCount("purchases", day),
        NullCount("active_days", day),
        RowCount(two_hours),
        NullCount("revenue", two_hours),
    }


def test_online_checks_and_offline_schema_drift_need_no_aggregate() -> None:
    """Schema drift reads the catalog's columns, which every offline observation carries."""
    view = make_view(
        [
            {"kind": "freshness", "max": "1h"},
            {"kind": "null_rate", "max": 0.1},
            {"kind": "schema_drift", "target": "offline"},
        ]
    )
    assert offline_metrics(plan_view(view)) == frozenset()


def test_offline_metrics_of_two_freshness_checks_are_one() -> None:
    view = make_view(
        [
            {"kind": "freshness", "warn": "1h", "target": "offline"},
            {"kind": "freshness", "max": "1d", "target": "offline", "name": "stale_table"},
        ]
    )
    minute = timedelta(minutes=1)
    assert offline_metrics(plan_view(view)) == {
        MaxTimestamp("event_timestamp", minute),
        FutureCount("event_timestamp", minute),
        MaxTimestamp("event_timestamp"),
    }
