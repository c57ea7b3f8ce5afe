"""The check-file model: defaults, threshold rules, frozen values and the target a check measures."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import TypeAdapter, ValidationError

from checks.checkfile import CheckFile
from checks.model import (
    DEFAULT_SAMPLE,
    AnyCheck,
    Check,
    FreshnessCheck,
    OfflineSource,
    OnlineSource,
    SchemaDriftCheck,
    dtype_family,
)
from checks.plan import default_target
from tests.builders import make_view

CHECK: TypeAdapter[AnyCheck] = TypeAdapter(Check)


def messages(caught: pytest.ExceptionInfo[ValidationError]) -> list[str]:
    return [str(e["ctx"]["error"]) if "ctx" in e else e["msg"] for e in caught.value.errors()]


def test_online_source_defaults_to_the_sample_that_keeps_three_percent_within_one_point() -> None:
    source = OnlineSource(store="redis_prod")
    assert source.sample == DEFAULT_SAMPLE == 1118
    assert source.population == "offline"
    assert source.lookback == timedelta(days=30)


def test_offline_source_needs_exactly_one_of_table_or_path() -> None:
    assert OfflineSource(store="w", table="t").table == "t"
    assert OfflineSource(store="lake", path="p.parquet").path == "p.parquet"
    with pytest.raises(ValidationError) as neither:
        OfflineSource(store="w")
    with pytest.raises(ValidationError) as both:
        OfflineSource(store="w", table="t", path="p")
    assert messages(neither) == [
        "expected exactly one of `table` (sql) or `path` (parquet), found neither"
    ]
    assert messages(both) == [
        "expected exactly one of `table` (sql) or `path` (parquet), found both"
    ]


def test_a_view_is_frozen() -> None:
    view = make_view()
    with pytest.raises(ValidationError):
        view.name = "other"  # type: ignore[misc]  # the test asserts a frozen view refuses the assignment


def test_a_single_entity_is_one_join_key_and_a_list_is_a_compound_key() -> None:
    assert make_view().join_keys == ("user_id",)
    assert make_view(entity=["merchant_id", "user_id"]).join_keys == ("merchant_id", "user_id")


def test_a_compound_key_needs_at_least_one_column() -> None:
    with pytest.raises(ValidationError):
        make_view(entity=[])


def test_a_view_needs_at_least_one_feature() -> None:
    with pytest.raises(ValidationError):
        make_view(features={})


@pytest.mark.parametrize(
    ("dtype", "family"),
    [
        ("int", "int"),
        ("int32", "int"),
        ("int64", "int"),
        ("float", "float"),
        ("float32", "float"),
        ("float64", "float"),
        ("double", "float"),
        ("string", "string"),
        ("bool", "bool"),
        ("bytes", "bytes"),
        ("timestamp", "timestamp"),
    ],
)
def test_dtype_family_ignores_width(dtype: str, family: str) -> None:
    assert dtype_family(dtype) == family


def test_a_check_defaults_to_severity_p3_and_no_labels() -> None:
    check = CHECK.validate_python({"kind": "freshness", "max": "1h"})
    assert isinstance(check, FreshnessCheck)
    assert (check.severity, dict(check.labels), check.quantile) == ("P3", {}, "p99")
    assert check.max == timedelta(hours=1)


@pytest.mark.parametrize(
    "check",
    [
        {"kind": "freshness", "warn": "1h", "max": "1h"},
        {"kind": "null_rate", "warn": 0.01, "max": 0.01},
        {"kind": "coverage", "warn": 0.95, "min": 0.95},
        {"kind": "schema_drift", "warn": 2, "max": 2},
    ],
)
def test_a_warning_threshold_may_equal_the_failing_one(check: dict[str, object]) -> None:
    CHECK.validate_python(check)


@pytest.mark.parametrize(
    ("check", "message"),
    [
        (
            {"kind": "freshness", "warn": "2h", "max": "1h"},
            "expected `warn` at most `max`, found warn 2h > max 1h",
        ),
        (
            {"kind": "null_rate", "warn": 0.02, "max": 0.01},
            "expected `warn` at most `max`, found warn 0.02 > max 0.01",
        ),
        (
            {"kind": "coverage", "warn": 0.9, "min": 0.95},
            "expected `warn` at least `min`, found warn 0.9 < min 0.95",
        ),
        (
            {"kind": "schema_drift", "warn": 3},
            "expected `warn` at most `max`, found warn 3 > max 0",
        ),
        (
            {"kind": "freshness", "quantile": "p50"},
            "expected at least one threshold, `warn` or `max`, found neither",
        ),
        ({"kind": "coverage"}, "expected at least one threshold, `warn` or `min`, found neither"),
    ],
)
def test_thresholds_out_of_order_or_missing_are_refused(
    check: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        CHECK.validate_python(check)
    assert messages(caught) == [message]


def test_schema_drift_fails_on_any_drift_by_default() -> None:
    check = CHECK.validate_python({"kind": "schema_drift"})
    assert isinstance(check, SchemaDriftCheck)
    assert (check.max, check.warn, check.allow_added) == (0, None, False)


def test_coverage_cannot_target_the_offline_store() -> None:
    with pytest.raises(ValidationError) as caught:
        CHECK.validate_python({"kind": "coverage", "min": 0.9, "target": "offline"})
    assert messages(caught) == [
        "expected target `online` (coverage is measured on the online store), found `offline`"
    ]


@pytest.mark.parametrize("field", ["min", "warn"])
def test_a_coverage_threshold_is_a_fraction(field: str) -> None:
    with pytest.raises(ValidationError):
        CHECK.validate_python({"kind": "coverage", field: 95})


def test_an_unknown_key_in_a_check_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        CHECK.validate_python({"kind": "freshness", "max": "1h", "quantil": "p99"})
    assert [e["type"] for e in caught.value.errors()] == ["extra_forbidden"]


@pytest.mark.parametrize(
    ("kind", "sources", "expected"),
    [
        ("freshness", ("online", "offline"), "online"),
        ("freshness", ("offline",), "offline"),
        ("null_rate", ("online", "offline"), "online"),
        ("null_rate", ("offline",), "offline"),
        ("schema_drift", ("online", "offline"), "offline"),
        ("schema_drift", ("online",), "online"),
        ("coverage", ("online", "offline"), "online"),
        ("coverage", ("offline",), None),
        ("freshness", (), None),
    ],
)
def test_default_target(kind: str, sources: tuple[str, ...], expected: str | None) -> None:
    """Online where there is one, except schema drift, which prefers the offline table; coverage
    only ever online."""
    threshold = {"coverage": "min", "schema_drift": "max"}.get(kind, "max")
    check: dict[str, object] = {"kind": kind, threshold: "1h" if kind == "freshness" else 0}
    view = make_view(
        [check],
        online=None if "online" not in sources else {"store": "redis_prod"},
        offline=None if "offline" not in sources else {"store": "warehouse", "table": "t"},
    )
    assert default_target(view.checks[0], view) == expected


def test_an_explicit_target_wins_even_if_the_view_lacks_it() -> None:
    """`problems_of` reports the missing source; the target itself is what the user wrote."""
    view = make_view([{"kind": "freshness", "max": "1h", "target": "offline"}], offline=None)
    assert default_target(view.checks[0], view) == "offline"


def test_a_check_file_needs_at_least_one_view() -> None:
    with pytest.raises(ValidationError):
        CheckFile.model_validate({"feature_views": []})


def test_the_json_schema_of_a_check_file_can_be_published() -> None:
    """Editors complete check files from this schema; durations are text or seconds."""
    schema = CheckFile.model_json_schema()
    ttl = schema["$defs"]["FeatureView"]["properties"]["ttl"]
    assert [branch["type"] for branch in ttl["anyOf"]] == ["string", "number"]
    assert schema["$defs"]["FeatureView"]["additionalProperties"] is False
