"""Anomaly: a check's value against the median and MAD of its own recorded history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from alerts.report import render_report
from checks.evaluate import evaluate
from checks.kinds.anomaly import Z_CAP, robust_z
from checks.model import AnomalyCheck, FeatureView
from checks.observation import MetricHistory, PastValue
from checks.plan import PlannedCheck, plan_view
from checks.result import (
    AnomalyDetails,
    CheckResult,
    Interval,
    NullRateDetails,
    RunResult,
    Status,
    Threshold,
)
from monitor.app import App, build_app
from monitor.loader import load
from monitor.runs.run import run_once
from monitor.state import StateStore
from tests.analytics_fixtures import config, write_offline, write_online

NOW = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)


def test_the_robust_z_of_a_value_three_mads_above_the_median() -> None:
    """Median 10, deviations 0 0 0 1 1 1 2: MAD 1; z = 0.6745 * 3."""
    z, median, mad, scale = robust_z(13, [10, 11, 12, 9, 10, 11, 10])
    assert (median, mad, scale) == (10, 1, "mad")
    assert z == pytest.approx(2.0235)


def test_a_zero_mad_falls_back_to_the_mean_absolute_deviation() -> None:
    """Six fives, a four and a six: MAD 0, mean AD 2 / 8; z = 2 / (1.2533 * 0.25)."""
    z, _, mad, scale = robust_z(7, [5, 5, 5, 5, 6, 4, 5, 5])
    assert (mad, scale) == (0, "mean_ad")
    assert z == pytest.approx(6.3831, abs=1e-4)


def test_any_change_of_a_constant_history_is_capped_at_z_cap() -> None:
    assert robust_z(5, [5] * 8)[0] == 0
    assert robust_z(4, [5] * 8) == (-Z_CAP, 5, 0, "constant")


def planned_anomaly(**options: object) -> PlannedCheck:
    view = FeatureView.model_validate(
        {
            "name": "v",
            "entity": "user_id",
            "ttl": "1d",
            "features": {"x": "float"},
            "online": {"store": "online"},
            "checks": [{"kind": "anomaly", "of": "v.null_rate.x@online", **options}],
        }
    )
    (planned,) = plan_view(view)
    return planned


def history(
    current: float, past: list[float], incidents: frozenset[int] = frozenset()
) -> MetricHistory:
    """`past` newest first, an hour apart; the values at the indexes in `incidents` from runs
    in which the watched check failed."""
    points = tuple(
        PastValue(NOW - timedelta(hours=i + 1), v, i in incidents) for i, v in enumerate(past)
    )
    return MetricHistory("v.null_rate.x@online", current, None, points)


def test_below_the_minimum_history_the_check_passes_unjudged() -> None:
    result = evaluate(planned_anomaly(min_history=8), history(99.0, [1.0, 1.0, 1.0]), NOW)
    assert isinstance(result.details, AnomalyDetails)
    assert result.status is Status.PASS
    assert result.value is None
    assert result.details.reason == "not enough history: 3 of 8 past values"


def test_a_value_beyond_the_threshold_fails_and_within_warn_warns() -> None:
    past = [10.0, 11.0, 12.0, 9.0, 10.0, 11.0, 10.0]  # median 10, MAD 1
    check = planned_anomaly(warn=2.0, max=3.5, min_history=7)
    assert evaluate(check, history(13.0, past), NOW).status is Status.WARN  # z 2.02
    assert evaluate(check, history(16.0, past), NOW).status is Status.FAIL  # z 4.05


def test_direction_up_lets_a_fall_pass() -> None:
    past = [10.0, 11.0, 12.0, 9.0, 10.0, 11.0, 10.0]  # median 10, MAD 1
    result = evaluate(planned_anomaly(direction="up", min_history=7), history(4.0, past), NOW)
    assert result.status is Status.PASS
    assert result.value == pytest.approx(-0.6745 * 6)


def test_the_window_limits_the_past_values_used() -> None:
    """The newest five (10 10 10 100 100) have median 10; all 23 would have 100."""
    past = [10.0] * 3 + [100.0] * 20
    result = evaluate(planned_anomaly(window=5, min_history=3), history(10.0, past), NOW)
    assert isinstance(result.details, AnomalyDetails)
    assert (result.details.history, result.details.median) == (5, 10.0)


def test_incidents_are_left_out_and_the_window_filled_with_the_values_before_them() -> None:
    """The newest three values, 0.5, are from failing runs: the window of five takes the five
    normal values after them (median 10), and the details count three incidents."""
    past = [0.5, 0.5, 0.5, 10.0, 11.0, 9.0, 10.0, 12.0, 100.0]
    result = evaluate(
        planned_anomaly(window=5, min_history=3), history(0.5, past, frozenset({0, 1, 2})), NOW
    )
    assert isinstance(result.details, AnomalyDetails)
    assert (result.details.history, result.details.median) == (5, 10.0)
    assert result.details.incidents == 3
    assert result.status is Status.FAIL


def test_a_check_switched_off_is_not_planned() -> None:
    assert AnomalyCheck.model_validate({"kind": "anomaly", "of": "a", "enabled": False})
    view = FeatureView.model_validate(
        {
            "name": "v",
            "entity": "user_id",
            "ttl": "1d",
            "features": {"x": "float"},
            "online": {"store": "online"},
            "checks": [{"kind": "anomaly", "of": "a", "enabled": False}],
        }
    )
    assert plan_view(view) == []


def recorded(
    check: str, value: float, at: datetime, index: int, status: Status = Status.PASS
) -> RunResult:
    result = CheckResult(
        check=check,
        kind="null_rate",
        feature_view="user_stats",
        feature="x",
        store="online",
        target="online",
        status=status,
        severity="P3",
        value=value,
        threshold=Threshold("max", 0.9, None, "ratio"),
        sample_size=100,
        details=NullRateDetails(round(value * 100), 100, Interval(0.0, 1.0)),
    )
    return RunResult(f"run-{index}", at, at, at, (result,))


CHECKS = """\
      - {kind: null_rate, feature: x, max: 0.9}
      - {kind: anomaly, of: null_rate.x@online, window: 20, min_history: 8, max: 3.5}"""
HISTORY = [0.10, 0.11, 0.09, 0.10, 0.12, 0.10, 0.08, 0.11, 0.10, 0.09]


def test_a_jump_of_the_null_rate_against_its_recorded_history_fails(tmp_path: Path) -> None:
    """History median 0.10, MAD 0.01; this run's null rate 0.5 (50 of 100 users):
    z = 0.6745 * 0.4 / 0.01 = 26.98."""
    write_online(
        tmp_path / "online.db",
        [(u, NOW, None if u <= 50 else 1.0, "red") for u in range(1, 101)],
    )
    with build_app_from(tmp_path) as app:
        assert app.state is not None
        for i, value in enumerate(HISTORY):
            at = NOW - timedelta(hours=len(HISTORY) - i)
            app.state.record_run(recorded("user_stats.null_rate.x@online", value, at, i))
        null_rate, anomaly = run_once(app, NOW).results
    assert null_rate.value == 0.5
    assert isinstance(anomaly.details, AnomalyDetails)
    assert anomaly.check == "user_stats.anomaly.null_rate.x@online"
    assert anomaly.details.median == pytest.approx(0.10)
    assert anomaly.details.history == 10
    assert anomaly.details.mad == pytest.approx(0.01)
    assert anomaly.value == pytest.approx(0.6745 * 0.4 / 0.01)
    assert anomaly.status is Status.FAIL


def test_runs_recorded_by_real_runs_build_the_history(tmp_path: Path) -> None:
    """Nine steady runs (null rate 0.5) recorded, then the tenth judged: z 0, pass."""
    write_online(
        tmp_path / "online.db",
        [(u, NOW, None if u <= 50 else 1.0, "red") for u in range(1, 101)],
    )
    with build_app_from(tmp_path) as app:
        for i in range(9):
            run = run_once(app, NOW - timedelta(hours=9 - i))
            app.record(run)
        last = run_once(app, NOW).results[1]
    assert isinstance(last.details, AnomalyDetails)
    assert last.details.history == 9
    assert last.details.reason is None
    assert (last.value, last.status) == (0.0, Status.PASS)
    with StateStore(f"sqlite:///{tmp_path / 'state.db'}") as state:
        kept = state.history("user_stats.anomaly.null_rate.x@online")
    assert len(kept) == 9
    assert kept[-1].value is None  # the first runs passed unjudged (not enough history)


def build_app_from(
    root: Path, window: int = 20, checks: str = CHECKS, state: str | None = None
) -> App:
    """An app over `checks` (`window` the anomaly's) with a SQLite offline table and the state
    database at `state` (default a SQLite file in `root`)."""
    engine = sa.create_engine(f"sqlite:///{root / 'offline.db'}")
    write_offline(engine, [(1, NOW, 1.0, "red")])
    engine.dispose()
    store = f"{{type: sql, url: 'sqlite:///{root / 'offline.db'}'}}"
    checks = checks.replace("window: 20", f"window: {window}")
    path = config(root, store, "table: user_stats", checks, root / "state.db")
    if state is not None:
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace(f"sqlite:///{root / 'state.db'}", state), encoding="utf-8")
    return build_app(load(path, {}))


WATCHED = "user_stats.null_rate.x@online"


def test_a_recorded_incident_is_not_learnt_and_the_next_one_is_detected(tmp_path: Path) -> None:
    """Ten normal runs (null rate about 0.10), then six in which the null rate check failed at
    0.5. Learnt, the window of ten would have median 0.5 and the next 0.5 would pass; left out,
    this run's 0.5 is judged against the normal ten and fails."""
    write_online(
        tmp_path / "online.db",
        [(u, NOW, None if u <= 50 else 1.0, "red") for u in range(1, 101)],
    )
    with build_app_from(tmp_path, window=10) as app:
        assert app.state is not None
        steps = [(v, Status.PASS) for v in HISTORY] + [(0.5, Status.FAIL)] * 6
        for i, (value, status) in enumerate(steps):
            at = NOW - timedelta(hours=len(steps) - i)
            app.state.record_run(recorded(WATCHED, value, at, i, status))
        run = run_once(app, NOW)
    anomaly = run.results[1]
    assert "10 values (at least 8); 6 of failing runs left out" in render_report(run)
    assert isinstance(anomaly.details, AnomalyDetails)
    assert (anomaly.details.history, anomaly.details.incidents) == (10, 6)
    assert anomaly.details.median == pytest.approx(0.10)
    assert anomaly.status is Status.FAIL


def test_the_judged_run_is_never_in_its_own_baseline(tmp_path: Path) -> None:
    """Values already recorded for this run's scheduled time, and one after it (a run judged
    again, or a past time judged late), are not past values of this run."""
    write_online(
        tmp_path / "online.db",
        [(u, NOW, None if u <= 50 else 1.0, "red") for u in range(1, 101)],
    )
    with build_app_from(tmp_path) as app:
        assert app.state is not None
        for i, value in enumerate(HISTORY):
            at = NOW - timedelta(hours=len(HISTORY) - i)
            app.state.record_run(recorded(WATCHED, value, at, i))
        app.state.record_run(recorded(WATCHED, 0.5, NOW, 100))
        app.state.record_run(recorded(WATCHED, 0.5, NOW + timedelta(hours=1), 101))
        anomaly = run_once(app, NOW).results[1]
    assert isinstance(anomaly.details, AnomalyDetails)
    assert (anomaly.details.history, anomaly.details.incidents) == (10, 0)
    assert anomaly.details.median == pytest.approx(0.10)
    assert anomaly.status is Status.FAIL


# --- seasonality ------------------------------------------------------------------------------

WEEK = timedelta(weeks=1)


def weekly_null_rate(at: datetime, spike: float) -> float:
    """A null rate with a weekly pattern: `spike` from 04:00 to 08:00 on Thursdays (a weekly
    batch writes nulls), 0.10 otherwise, with a little noise that repeats every five hours."""
    noise = 0.01 * (int(at.timestamp() // 3600) % 5 - 2)
    return (spike if at.weekday() == 3 and 4 <= at.hour <= 8 else 0.10) + noise


def weekly_history(spike: float) -> list[PastValue]:
    """Hourly values of `weekly_null_rate` over the 24 hours before NOW (a Thursday 06:00) and
    over the Thursday mornings of the five weeks before it, newest first."""
    hours = [NOW - timedelta(hours=h) for h in range(1, 25)]
    hours += [NOW - w * WEEK + timedelta(hours=h) for w in range(1, 6) for h in range(-6, 7)]
    times = sorted(set(hours), reverse=True)
    return [PastValue(t, weekly_null_rate(t, spike)) for t in times]


def judge(current: float, past: list[PastValue], **options: object) -> CheckResult:
    return evaluate(
        planned_anomaly(window=5, min_history=3, **options),
        MetricHistory("v.null_rate.x@online", current, None, tuple(past)),
        NOW,
    )


def test_a_weekly_pattern_is_no_anomaly_against_the_same_hour_of_earlier_weeks() -> None:
    """Thursday 06:00 at 0.5, as on every Thursday morning: against the last runs (0.10) an
    anomaly, against the same hour of the five weeks before none."""
    past = weekly_history(spike=0.5)
    assert judge(0.5, past).status is Status.FAIL
    weekly = judge(0.5, past, seasonality="weekly")
    assert isinstance(weekly.details, AnomalyDetails)
    assert weekly.details.history == 5
    assert weekly.details.median == pytest.approx(0.5, abs=0.02)
    assert weekly.status is Status.PASS


def test_a_drop_from_the_weekly_level_is_detected() -> None:
    """Every Thursday morning at 0.9, this one at 0.5: against the same hour of earlier weeks
    a drop, which fails; 0.9, the usual level, passes."""
    past = weekly_history(spike=0.9)
    weekly = judge(0.5, past, seasonality="weekly")
    assert isinstance(weekly.details, AnomalyDetails)
    assert weekly.details.median == pytest.approx(0.9, abs=0.02)
    assert weekly.status is Status.FAIL
    assert judge(0.9, past, seasonality="weekly").status is Status.PASS


def test_a_season_takes_the_value_nearest_its_time_within_the_tolerance() -> None:
    """A day back, values 20 minutes and 40 minutes off: the first is taken; two days back
    only one 40 minutes off, beyond the tolerance of 30 minutes: no value for that day."""
    past = [
        PastValue(NOW - timedelta(days=1, minutes=-20), 3.0),
        PastValue(NOW - timedelta(days=1, minutes=40), 99.0),
        PastValue(NOW - timedelta(days=2, minutes=40), 99.0),
        PastValue(NOW - timedelta(days=3), 3.0),
        PastValue(NOW - timedelta(days=4), 3.0),
    ]
    result = judge(3.0, past, seasonality="daily")
    assert isinstance(result.details, AnomalyDetails)
    assert (result.details.history, result.details.median) == (3, 3.0)


def test_a_season_whose_values_are_all_incidents_is_one_incident() -> None:
    """A day back only a failed run: an incident; two days back a failed run at the very time
    and a good one 10 minutes off: the good one is taken."""
    past = [
        PastValue(NOW - timedelta(days=1), 50.0, incident=True),
        PastValue(NOW - timedelta(days=2, minutes=-10), 3.0),
        PastValue(NOW - timedelta(days=2), 50.0, incident=True),
        PastValue(NOW - timedelta(days=3), 3.0),
        PastValue(NOW - timedelta(days=4), 3.0),
    ]
    result = judge(50.0, past, seasonality="daily")
    assert isinstance(result.details, AnomalyDetails)
    assert (result.details.history, result.details.incidents) == (3, 1)
    assert result.status is Status.FAIL


@pytest.mark.parametrize(("seasonality", "tolerance"), [("daily", "12h"), ("weekly", "4d")])
def test_a_tolerance_of_half_a_season_or_more_is_refused(seasonality: str, tolerance: str) -> None:
    with pytest.raises(ValidationError, match="expected `tolerance` above 0 and below half a"):
        AnomalyCheck.model_validate(
            {"kind": "anomaly", "of": "a", "seasonality": seasonality, "tolerance": tolerance}
        )


SEASONAL_CHECKS = """\
      - {kind: null_rate, feature: x, max: 0.9}
      - {kind: anomaly, name: weekly, of: null_rate.x@online, window: 5, min_history: 3, seasonality: weekly}
      - {kind: anomaly, name: plain, of: null_rate.x@online, window: 5, min_history: 3}"""


@pytest.mark.every_state_backend
def test_a_weekly_pattern_recorded_in_the_state_database(tmp_path: Path, state_url: str) -> None:
    """This run's null rate, 0.5, is what every Thursday morning recorded: the weekly check
    reads the same hour of five earlier weeks from the state database and passes; the plain
    one, reading the last five runs (0.10), fails."""
    write_online(
        tmp_path / "online.db",
        [(u, NOW, None if u <= 50 else 1.0, "red") for u in range(1, 101)],
    )
    with build_app_from(tmp_path, checks=SEASONAL_CHECKS, state=state_url) as app:
        assert app.state is not None
        past = weekly_history(spike=0.5)
        for i, point in enumerate(reversed(past)):
            app.state.record_run(recorded(WATCHED, point.value, point.scheduled_at, i))
        _, weekly, plain = run_once(app, NOW).results
    assert isinstance(weekly.details, AnomalyDetails)
    assert weekly.details.history == 5
    assert weekly.details.median == pytest.approx(0.5, abs=0.02)
    assert weekly.status is Status.PASS
    assert plain.status is Status.FAIL
