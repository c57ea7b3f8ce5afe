"""Results: threshold boundaries, status precedence, exit codes and the JSON contract."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from checks.result import (
    CheckResult,
    ErrorDetails,
    RunResult,
    Status,
    Threshold,
    rfc3339,
    worst,
)
from checks.serde import to_object
from tests.builders import AT

AT_MOST = Threshold("max", fail=0.01, warn=0.005, unit="ratio")
AT_LEAST = Threshold("min", fail=0.95, warn=0.98, unit="ratio")


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (0.0, Status.PASS),
        (0.005, Status.PASS),  # equal to warn: not above it
        (0.0051, Status.WARN),
        (0.01, Status.WARN),  # equal to max: passes max, still above warn
        (0.0101, Status.FAIL),
    ],
)
def test_a_max_threshold_fails_only_above_max(value: float, status: Status) -> None:
    assert AT_MOST.status(value) is status


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (1.0, Status.PASS),
        (0.98, Status.PASS),
        (0.97, Status.WARN),
        (0.95, Status.WARN),  # equal to min: not below it
        (0.949, Status.FAIL),
    ],
)
def test_a_min_threshold_fails_only_below_min(value: float, status: Status) -> None:
    assert AT_LEAST.status(value) is status


def test_a_threshold_without_warn_never_warns() -> None:
    assert Threshold("max", 3600.0, None, "seconds").status(3600.0) is Status.PASS
    assert Threshold("max", 3600.0, None, "seconds").status(3600.5) is Status.FAIL


def test_a_threshold_without_fail_only_warns() -> None:
    assert Threshold("max", None, 1800.0, "seconds").status(10**9) is Status.WARN


def test_threshold_json_names_its_direction() -> None:
    assert to_object(AT_MOST) == {"max": 0.01, "warn": 0.005, "unit": "ratio"}
    assert to_object(AT_LEAST) == {"min": 0.95, "warn": 0.98, "unit": "ratio"}
    assert to_object(Threshold("max", None, 60.0, "seconds")) == {"warn": 60.0, "unit": "seconds"}


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ((), Status.PASS),
        ((Status.PASS, Status.PASS), Status.PASS),
        ((Status.PASS, Status.WARN), Status.WARN),
        ((Status.WARN, Status.FAIL, Status.PASS), Status.FAIL),
        ((Status.FAIL, Status.ERROR, Status.WARN), Status.ERROR),
        ((Status.ERROR, Status.PASS), Status.ERROR),
    ],
)
def test_error_beats_fail_beats_warn_beats_pass(
    statuses: tuple[Status, ...], expected: Status
) -> None:
    assert worst(statuses) is expected


def result(status: Status, check: str = "v.freshness@online") -> CheckResult:
    return CheckResult(
        check=check,
        kind="freshness",
        feature_view="v",
        feature=None,
        store="redis_prod",
        target="online",
        status=status,
        severity="P1",
        value=None,
        threshold=Threshold("max", 3600.0, None, "seconds"),
        sample_size=None,
        details=ErrorDetails("boom"),
    )


def run(*statuses: Status) -> RunResult:
    return RunResult(
        run_id="r1",
        scheduled_at=AT,
        started_at=AT + timedelta(seconds=1),
        finished_at=AT + timedelta(seconds=2, microseconds=500_000),
        results=tuple(result(s, f"v.c{i}@online") for i, s in enumerate(statuses)),
    )


@pytest.mark.parametrize(
    ("statuses", "code"),
    [
        ((Status.PASS, Status.PASS), 0),
        ((Status.PASS, Status.WARN), 1),
        ((Status.WARN, Status.FAIL), 2),
        ((Status.FAIL, Status.ERROR, Status.WARN), 3),
        ((), 0),
    ],
)
def test_exit_code_follows_the_worst_status(statuses: tuple[Status, ...], code: int) -> None:
    """Soda's convention: 0 all pass, 1 warnings only, 2 a failure, 3 an error."""
    assert run(*statuses).exit_code == code


def test_run_counts_every_status() -> None:
    assert run(Status.PASS, Status.FAIL, Status.FAIL).counts() == {
        "pass": 1,
        "warn": 0,
        "fail": 2,
        "error": 0,
    }


def test_run_json_shape() -> None:
    shown = to_object(run(Status.WARN, Status.PASS))
    assert shown == {
        "run_id": "r1",
        "scheduled_at": "2024-06-01T12:00:00Z",
        "started_at": "2024-06-01T12:00:01Z",
        "finished_at": "2024-06-01T12:00:02.500000Z",
        "status": "warn",
        "counts": {"pass": 1, "warn": 1, "fail": 0, "error": 0},
        "results": [
            to_object(result(Status.WARN, "v.c0@online")),
            to_object(result(Status.PASS, "v.c1@online")),
        ],
    }
    json.dumps(shown)  # plain JSON, nothing left to convert


def test_check_result_json_has_the_contract_keys() -> None:
    shown = to_object(result(Status.ERROR))
    assert shown == {
        "check": "v.freshness@online",
        "kind": "freshness",
        "feature_view": "v",
        "feature": None,
        "store": "redis_prod",
        "target": "online",
        "status": "error",
        "severity": "P1",
        "value": None,
        "threshold": {"max": 3600.0, "unit": "seconds"},
        "sample_size": None,
        "details": {"reason": "boom"},
        "labels": {},
    }


def test_rfc3339_is_utc_with_z() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert rfc3339(datetime(2024, 6, 1, 14, 0, tzinfo=plus_two)) == "2024-06-01T12:00:00Z"
    assert rfc3339(datetime(2024, 6, 1, 12, 0, tzinfo=UTC)) == "2024-06-01T12:00:00Z"
