"""row_count's `change`: the count of this run against the median of the check's earlier counts,
as bounds that tighten the absolute ones. Pure evaluation on hand-built histories, the model's
rules, and runs against a real SQLite offline table recorded in a real state database."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import TypeAdapter, ValidationError

from alerts.report import render_report
from checks.evaluate import evaluate
from checks.model import Check
from checks.observation import CountHistory, PastCount, ProbeFailure, RowCount
from checks.plan import PlannedCheck
from checks.result import CheckResult, ErrorDetails, RowCountDetails, RunResult, Status, Threshold
from checks.serde import to_object
from monitor.app import App, build_app
from monitor.loader import load
from monitor.runs import analytics
from monitor.runs.run import run_once
from monitor.state import StateStore
from tests.analytics_fixtures import OfflineRowSpec, config, write_offline, write_online
from tests.builders import AT, offline, plan

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
CHECK: TypeAdapter[Any] = TypeAdapter(Check)


def counted(
    rows: int, past: list[float], change: Mapping[str, object], **bounds: object
) -> CheckResult:
    """Evaluate a one-day row_count with `change` on `rows` now and `past` (newest first)."""
    planned = plan({"kind": "row_count", "change": dict(change), **bounds})
    history = tuple(
        PastCount(AT - (i + 1) * HOUR, value, DAY.total_seconds()) for i, value in enumerate(past)
    )
    return evaluate(planned, CountHistory(offline({RowCount(DAY): rows}), history), AT)


def details(result: CheckResult) -> RowCountDetails:
    assert isinstance(result.details, RowCountDetails)
    return result.details


# --- evaluation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "status"),
    [
        (49, Status.FAIL),
        (50, Status.WARN),
        (69, Status.WARN),
        (70, Status.PASS),
        (200, Status.PASS),
    ],
)
def test_a_drop_beyond_max_drop_of_the_previous_count_fails(rows: int, status: Status) -> None:
    """Reference 100 (the previous run): below 50 fails (a 50% drop is allowed), below 70 warns."""
    result = counted(rows, [100], {"max_drop": 0.5, "warn_drop": 0.3})
    assert (result.value, result.status) == (float(rows), status)
    assert result.threshold == Threshold("min", 50.0, 70.0, "count")
    assert (details(result).reference, details(result).history) == (100.0, 1)
    assert details(result).change == pytest.approx((rows - 100) / 100)


@pytest.mark.parametrize(
    ("rows", "status"),
    [(150, Status.PASS), (151, Status.WARN), (200, Status.WARN), (201, Status.FAIL)],
)
def test_a_rise_beyond_max_rise_fails(rows: int, status: Status) -> None:
    result = counted(rows, [100], {"max_rise": 1.0, "warn_rise": 0.5})
    assert result.status is status
    assert result.threshold == Threshold("max", 200.0, 150.0, "count")


def test_the_reference_is_the_median_of_the_last_against_counts() -> None:
    """The last three counts, 100, 10 and 90 (the fourth, 1000, is beyond `against`): median 90;
    a drop to 40 is more than half of 90."""
    result = counted(40, [100, 10, 90, 1000], {"against": 3, "max_drop": 0.5})
    assert (details(result).reference, details(result).history) == (90.0, 3)
    assert result.threshold.fail == 45.0
    assert result.status is Status.FAIL


def test_the_tighter_of_an_absolute_and_a_change_bound_holds() -> None:
    """min 60 is tighter than 50% below 100; on the upper side, +100% (200) is tighter than max
    1000; warn_max 150 stays, there is no warn_rise."""
    result = counted(55, [100], {"max_drop": 0.5, "max_rise": 1.0}, min=60, max=1000, warn_max=150)
    assert result.threshold == Threshold("max", 200.0, 150.0, "count", fail_min=60.0)
    assert result.status is Status.FAIL
    assert to_object(result)["threshold"] == {
        "min": 60.0,
        "max": 200.0,
        "warn_max": 150.0,
        "unit": "count",
    }


def test_counts_of_another_window_are_not_compared() -> None:
    """After the window changed from 1h to 1d, the 1h counts are left out."""
    planned = plan({"kind": "row_count", "change": {"max_drop": 0.5, "against": 2}})
    past = (
        PastCount(AT - HOUR, 5.0, HOUR.total_seconds()),
        PastCount(AT - 2 * HOUR, 120.0, DAY.total_seconds()),
        PastCount(AT - 3 * HOUR, 4.0, HOUR.total_seconds()),
        PastCount(AT - 4 * HOUR, 80.0, None),  # recorded without a window: counted
    )
    result = evaluate(planned, CountHistory(offline({RowCount(DAY): 90}), past), AT)
    assert (details(result).reference, details(result).history) == (100.0, 2)
    assert result.status is Status.PASS


def test_counts_of_runs_that_failed_are_not_the_reference() -> None:
    """The newest count, 10, came from a run in which the check failed: the reference is the
    median of the two counts before it, 100, not of 10 and 100, and 40 is a 60% drop."""
    planned = plan({"kind": "row_count", "change": {"max_drop": 0.5, "against": 2}})
    past = (
        PastCount(AT - HOUR, 10.0, DAY.total_seconds(), incident=True),
        PastCount(AT - 2 * HOUR, 100.0, DAY.total_seconds()),
        PastCount(AT - 3 * HOUR, 100.0, DAY.total_seconds()),
    )
    result = evaluate(planned, CountHistory(offline({RowCount(DAY): 40}), past), AT)
    assert (details(result).reference, details(result).history) == (100.0, 2)
    assert details(result).incidents == 1
    shown = to_object(result)["details"]
    assert isinstance(shown, dict)
    assert shown["incidents"] == 1
    assert result.status is Status.FAIL


def test_without_enough_history_only_the_absolute_bounds_are_judged() -> None:
    result = counted(5, [100, 100], {"max_drop": 0.5, "against": 5, "min_history": 3}, min=10)
    assert result.status is Status.FAIL  # min 10 still holds
    assert result.threshold == Threshold("min", 10.0, None, "count")
    assert details(result).reason == "not enough history: 2 of 3 earlier counts"
    assert details(result).reference is None
    first = counted(0, [], {"max_drop": 0.5})
    assert (first.status, details(first).reason) == (
        Status.PASS,
        "not enough history: 0 of 1 earlier counts",
    )


def test_from_a_reference_of_zero_any_row_is_an_infinite_rise_and_no_drop_is_possible() -> None:
    rose = counted(1, [0.0], {"max_rise": 5.0, "max_drop": 0.5})
    assert (rose.status, details(rose).change) == (Status.FAIL, None)
    still = counted(0, [0.0], {"max_rise": 5.0, "max_drop": 0.5})
    assert (still.status, details(still).change) == (Status.PASS, None)


def test_change_details_in_json() -> None:
    shown = to_object(counted(40, [100], {"max_drop": 0.5}))
    assert shown["details"] == {  # `incidents` not written when 0
        "rows": 40,
        "window_seconds": 86400.0,
        "history": 1,
        "reference": 100.0,
        "change": -0.6,
    }


# --- the model --------------------------------------------------------------------------------


def refused(check: Mapping[str, object]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        CHECK.validate_python(dict(check))
    return [error["msg"].removeprefix("Value error, ") for error in caught.value.errors()]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {},
            "expected at least one of `max_drop`, `warn_drop`, `max_rise` or `warn_rise`, found none",
        ),
        (
            {"max_drop": 0.2, "warn_drop": 0.3},
            "expected `warn_drop` at most `max_drop`, found warn_drop 0.3 > max_drop 0.2",
        ),
        (
            {"max_rise": 1, "against": 2, "min_history": 3},
            "expected `min_history` at most `against`, found min_history 3 > against 2",
        ),
        ({"max_drop": 1.5}, "Input should be less than or equal to 1"),
        ({"max_rise": -1}, "Input should be greater than or equal to 0"),
        ({"max_rise": 1, "since": "1d"}, "Extra inputs are not permitted"),
    ],
)
def test_change_bounds_are_checked(change: dict[str, object], message: str) -> None:
    assert refused({"kind": "row_count", "change": change}) == [message]


def test_change_alone_is_enough_and_defaults_to_the_previous_run() -> None:
    check = CHECK.validate_python({"kind": "row_count", "change": {"max_drop": 0.5}})
    assert (check.min, check.max, check.change.against, check.change.min_history) == (
        None,
        None,
        1,
        1,
    )


# --- the probe: where the earlier counts come from ----------------------------------------------


def test_without_a_state_database_the_change_cannot_be_judged_and_is_an_error() -> None:
    planned: PlannedCheck = plan({"kind": "row_count", "min": 1, "change": {"max_drop": 0.5}})
    observed = analytics.measure(
        planned.view, [planned], None, None, {"offline": offline({RowCount(DAY): 7})}, AT
    )
    failure = observed[planned.id]
    assert isinstance(failure, ProbeFailure)
    result = evaluate(planned, failure, AT)
    assert result.status is Status.ERROR
    assert isinstance(result.details, ErrorDetails)
    assert result.details.reason == "no state database: no earlier counts to compare with"


NOW = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
CHECKS = """\
      - {kind: row_count, window: 1h, min: 1, change: {against: 3, max_drop: 0.5, warn_drop: 0.2}}"""


def test_runs_recorded_in_the_state_database_are_the_reference(tmp_path: Path) -> None:
    """Each of the hours before NOW - 1h holds 100 rows, the last hour 40: the runs at NOW - 3h,
    - 2h and - 1h count 100 each (the first with no history, passing unjudged); the run at NOW
    counts 40 against their median 100, a 60% drop: fail, with its threshold min 50."""
    rows = [
        (u, NOW - timedelta(hours=h, minutes=30), 1.0, "red")
        for h in range(1, 6)
        for u in range(1, 101)
    ] + [(u, NOW - timedelta(minutes=10), 1.0, "red") for u in range(1, 41)]
    with app_with(tmp_path, rows, CHECKS) as app:
        assert app.state is not None
        earlier = []
        for hours in (3, 2, 1):
            run = run_once(app, NOW - timedelta(hours=hours))
            app.record(run)
            earlier.append(run.results[0])
        last = run_once(app, NOW)
        app.record(last)
        recorded = app.state.recorded_run(last.run_id)
    (now,) = last.results
    assert recorded is not None
    assert recorded.results == last.results  # the details survive the state database
    page = render_report(last)
    assert "median of 3 earlier counts" in page
    assert "-60.0%" in page

    assert [(r.value, r.status) for r in earlier] == [(100.0, Status.PASS)] * 3
    assert [details(r).reason for r in earlier] == [
        "not enough history: 0 of 1 earlier counts",
        None,
        None,
    ]
    assert [details(r).reference for r in earlier] == [None, 100.0, 100.0]
    assert (now.value, now.status) == (40.0, Status.FAIL)
    assert now.threshold == Threshold("min", 50.0, 80.0, "count")
    assert details(now) == RowCountDetails(
        rows=40, window_seconds=3600.0, history=3, reference=100.0, change=-0.6, incidents=0
    )


def test_a_change_given_no_earlier_counts_is_an_error_never_a_pass() -> None:
    planned = plan({"kind": "row_count", "min": 1, "change": {"max_drop": 0.5}})
    result = evaluate(planned, offline({RowCount(DAY): 7}), AT)
    assert result.status is Status.ERROR
    assert isinstance(result.details, ErrorDetails)
    assert result.details.reason == "no earlier counts were read: no change to judge"


INCIDENT_CHECKS = """\
      - {kind: row_count, window: 1h, change: {against: 2, max_drop: 0.5, warn_drop: 0.2}}"""


def test_a_recorded_incident_is_not_the_reference_of_the_next_runs(tmp_path: Path) -> None:
    """Hours of 100 rows, but the hour judged at NOW - 2h holds 10 (a 90% drop: it fails),
    and the last 10 minutes 40. The run at NOW compares 40 with the 100s of NOW - 1h and
    NOW - 3h, not with the incident's 10 (which would make the reference 55 and 40 a mere
    warning): it fails, one incident passed over."""
    rows = [
        (u, NOW - timedelta(hours=h, minutes=30), 1.0, "red")
        for h in range(1, 6)
        for u in range(1, 11 if h == 2 else 101)
    ] + [(u, NOW - timedelta(minutes=10), 1.0, "red") for u in range(1, 41)]
    with app_with(tmp_path, rows, INCIDENT_CHECKS) as app:
        earlier = []
        for hours in (4, 3, 2, 1):
            run = run_once(app, NOW - timedelta(hours=hours))
            app.record(run)
            earlier.append(run.results[0])
        last = run_once(app, NOW)
    (now,) = last.results
    assert "median of 2 earlier counts; 1 of failing runs left out" in render_report(last)
    assert [(r.value, r.status) for r in earlier] == [
        (100.0, Status.PASS),
        (100.0, Status.PASS),
        (10.0, Status.FAIL),
        (100.0, Status.PASS),
    ]
    assert details(earlier[3]).incidents == 1
    assert (now.value, now.status) == (40.0, Status.FAIL)
    assert details(now) == RowCountDetails(
        rows=40, window_seconds=3600.0, history=2, reference=100.0, change=-0.6, incidents=1
    )


@pytest.mark.every_state_backend
def test_a_count_recorded_for_this_run_is_never_its_own_reference(state: StateStore) -> None:
    """A count already recorded at this run's scheduled time (the run judged again) and one
    after it are not earlier counts: only the one before is read."""
    planned = plan({"kind": "row_count", "change": {"max_drop": 0.5}})
    for i, (hours, rows) in enumerate([(-1, 100), (0, 1000), (1, 1000)]):
        at = AT + hours * HOUR
        state.record_run(RunResult(f"run-{i}", at, at, at, (count_result(planned, rows),)))
    observed = analytics.measure(
        planned.view, [planned], None, state, {"offline": offline({RowCount(DAY): 90})}, AT
    )
    history = observed[planned.id]
    assert isinstance(history, CountHistory)
    assert [(p.scheduled_at, p.rows) for p in history.past] == [(AT - HOUR, 100.0)]


def count_result(planned: PlannedCheck, rows: int) -> CheckResult:
    """A passing result of `planned` that counted `rows` in a one-day window."""
    return evaluate(planned, CountHistory(offline({RowCount(DAY): rows}), ()), AT)


def app_with(root: Path, rows: Sequence[OfflineRowSpec], checks: str) -> App:
    """An app over an offline SQLite table of `rows` and a SQLite state database."""
    write_online(root / "online.db", [(1, NOW, 1.0, "red")])
    engine = sa.create_engine(f"sqlite:///{root / 'offline.db'}")
    write_offline(engine, rows)
    engine.dispose()
    store = f"{{type: sql, url: 'sqlite:///{root / 'offline.db'}'}}"
    return build_app(load(config(root, store, "table: user_stats", checks, root / "state.db"), {}))
