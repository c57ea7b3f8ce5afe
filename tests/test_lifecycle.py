"""The alert lifecycle: identity, pending -> firing -> resolved, repeats, warnings, probe errors
and their inhibition, silences, scope and persistence. Runs are five minutes apart from `AT`, and
each run is processed at its scheduled time unless a test says otherwise."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from alerts.codec import record_from_json, record_to_json
from alerts.lifecycle import (
    CHECK_FAILED,
    CHECK_WARNING,
    PROBE_ERROR,
    AlertingConfig,
    AlertRecord,
    RepeatFor,
    Transition,
    advance,
    check_labels,
    retire,
)
from alerts.model import AlertState, fingerprint
from alerts.silences import Silence, Silences
from checks.result import CheckResult, ErrorDetails, FreshnessDetails, RunResult, Status, Threshold

AT = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
STEP = timedelta(minutes=5)
FRESHNESS = Threshold("max", 3600.0, 1800.0, "seconds")
FRESH = "user_stats.freshness@online"
COVERAGE = "user_stats.coverage@online"
PASS, WARN, FAIL, ERROR = Status.PASS, Status.WARN, Status.FAIL, Status.ERROR
DEFAULTS = AlertingConfig()


def result(status: Status, check: str = FRESH, **fields: object) -> CheckResult:
    """An online check of `user_stats` on `redis_prod`, severity P1, with `fields` replaced."""
    value = {PASS: 60.0, WARN: 2400.0, FAIL: 7200.0, ERROR: None}[status]
    details = (
        ErrorDetails("redis_prod: connection refused")
        if status is ERROR
        else FreshnessDetails(p50=value, p90=value, p99=value, max=value)
    )
    base = CheckResult(
        check=check,
        kind="freshness",
        feature_view="user_stats",
        feature=None,
        store="redis_prod",
        target="online",
        status=status,
        severity="P1",
        value=value,
        threshold=FRESHNESS,
        sample_size=100,
        details=details,
    )
    return replace(base, **fields)  # type: ignore[arg-type]  # fields are CheckResult's own


def run(index: int, *results: CheckResult) -> RunResult:
    at = AT + index * STEP
    return RunResult(f"run-{index}", at, at, at, results)


def play(
    rounds: Sequence[Sequence[CheckResult]],
    settings: AlertingConfig = DEFAULTS,
    silences: Silences | None = None,
    repeat_for: RepeatFor | None = None,
    start: Mapping[str, AlertRecord] | None = None,
) -> list[Transition]:
    """Advance through one run per round, each processed at its scheduled time."""
    records: Mapping[str, AlertRecord] = start or {}
    out: list[Transition] = []
    for index, results in enumerate(rounds):
        step = advance(
            records,
            run(index, *results),
            settings,
            AT + index * STEP,
            f"https://featmon/reports/run-{index}.html",
            silences=silences,
            repeat_for=repeat_for,
        )
        out.append(step)
        records = step.records
    return out


def states(steps: list[Transition]) -> list[list[tuple[str, AlertState]]]:
    """Per run: (alertname, state) of each event sent."""
    return [[(e.labels["alertname"], e.state) for e in step.events] for step in steps]


def only(step: Transition) -> AlertRecord:
    (record,) = step.records.values()
    return record


FIRING, RESOLVED, PENDING = AlertState.FIRING, AlertState.RESOLVED, AlertState.PENDING


# --- identity ---------------------------------------------------------------------------------


LABELS = st.lists(
    st.tuples(st.text(max_size=8), st.text(max_size=8)), max_size=8, unique_by=lambda kv: kv[0]
)


@given(LABELS.flatmap(lambda items: st.tuples(st.just(items), st.permutations(items))))
def test_the_fingerprint_does_not_depend_on_label_order(
    orders: tuple[list[tuple[str, str]], list[tuple[str, str]]],
) -> None:
    written, shuffled = orders
    assert fingerprint(dict(written)) == fingerprint(dict(shuffled))


def test_identity_is_the_check_view_store_severity_and_user_labels() -> None:
    labels = check_labels(result(FAIL, labels=MappingProxyType({"team": "growth"})))
    assert labels == {
        "alertname": CHECK_FAILED,
        "check": FRESH,
        "kind": "freshness",
        "feature_view": "user_stats",
        "store": "redis_prod",
        "severity": "P1",
        "team": "growth",
    }


def test_values_and_report_links_are_not_identity() -> None:
    first = result(FAIL, value=7200.0)
    second = result(FAIL, value=9999.0, sample_size=5)
    assert fingerprint(check_labels(first)) == fingerprint(check_labels(second))


def test_the_feature_of_a_per_feature_check_is_identity() -> None:
    labels = check_labels(result(FAIL, feature="revenue"))
    assert labels["feature"] == "revenue"


def test_a_user_label_cannot_override_a_reserved_label() -> None:
    labels = check_labels(result(FAIL, labels=MappingProxyType({"store": "elsewhere"})))
    assert labels["store"] == "redis_prod"


def test_a_severity_change_ends_the_old_alert_and_starts_a_new_one() -> None:
    steps = play([[result(FAIL, severity="P1")], [result(FAIL, severity="P2")]])
    (fired, resolved) = sorted(steps[1].events, key=lambda e: e.state.value)
    assert (fired.state, fired.severity) == (FIRING, "P2")
    assert (resolved.state, resolved.severity) == (RESOLVED, "P1")
    assert resolved.annotations["resolved_because"] == "no longer evaluated"


# --- pending, firing, resolved ----------------------------------------------------------------


def test_one_failing_run_fires_by_default() -> None:
    (step,) = play([[result(FAIL)]])
    (event,) = step.events
    assert (event.state, event.starts_at, event.ends_at) == (FIRING, AT, None)
    assert (
        event.annotations["summary"]
        == f"{FRESH} fails on redis_prod: 2h 00m against max 1h 00m (warn 30m 00s)"
    )
    assert event.report_url == "https://featmon/reports/run-0.html"


def test_an_alert_fires_after_for_runs_failing_runs_and_starts_then() -> None:
    steps = play([[result(FAIL)]] * 3, AlertingConfig(for_runs=3))
    assert [len(s.events) for s in steps] == [0, 0, 1]
    assert [only(s).state for s in steps] == [PENDING, PENDING, FIRING]
    record = only(steps[2])
    assert (record.active_since, record.started_at) == (AT, AT + 2 * STEP)
    assert steps[2].events[0].starts_at == AT + 2 * STEP


def test_flapping_data_with_for_runs_2_pages_no_one() -> None:
    steps = play(
        [[result(s)] for s in (FAIL, PASS, FAIL, PASS, FAIL, PASS, FAIL)],
        AlertingConfig(for_runs=2),
    )
    assert all(not s.events for s in steps)
    assert not steps[-2].records  # a pending alert that passes is forgotten


def test_a_firing_alert_resolves_after_resolve_after_runs_passing_runs() -> None:
    steps = play([[result(s)] for s in (FAIL, PASS, PASS)], AlertingConfig(resolve_after_runs=2))
    assert states(steps) == [[(CHECK_FAILED, FIRING)], [], [(CHECK_FAILED, RESOLVED)]]
    assert steps[2].events[0].ends_at == AT + 2 * STEP
    assert steps[2].events[0].annotations["status"] == "pass"  # the values that resolved it


def test_a_failing_run_restarts_the_count_to_resolve() -> None:
    steps = play(
        [[result(s)] for s in (FAIL, PASS, FAIL, PASS)], AlertingConfig(resolve_after_runs=2)
    )
    assert only(steps[-1]).state is FIRING
    assert all(not s.events for s in steps[1:])


def test_a_firing_alert_is_notified_again_every_repeat_interval() -> None:
    settings = AlertingConfig(repeat_interval=timedelta(minutes=15))
    steps = play([[result(FAIL)]] * 8, settings)  # 0, 5, ..., 35 minutes
    assert [i for i, s in enumerate(steps) if s.events] == [0, 3, 6]
    assert steps[3].events[0].starts_at == AT  # a repeat keeps the start of the alert


def test_a_route_can_shorten_the_repeat_interval() -> None:
    def ten_minutes_for_p1(labels: Mapping[str, str]) -> timedelta | None:
        return timedelta(minutes=10) if labels["severity"] == "P1" else None

    steps = play([[result(FAIL)]] * 5, repeat_for=ten_minutes_for_p1)
    assert [i for i, s in enumerate(steps) if s.events] == [0, 2, 4]


def test_a_repeat_interval_must_be_above_zero() -> None:
    with pytest.raises(ValidationError, match="expected a duration above 0s"):
        AlertingConfig.model_validate({"repeat_interval": "0s"})


def test_a_resolved_alert_is_kept_for_keep_resolved_then_dropped() -> None:
    settings = AlertingConfig(keep_resolved=timedelta(minutes=10))
    steps = play([[result(FAIL)], [result(PASS)], [result(PASS)], [result(PASS)]], settings)
    assert only(steps[2]).state is RESOLVED  # ended at 5m, now 10m
    assert not steps[3].records  # now 15m: 10 minutes after it ended


def test_a_failure_after_resolution_is_a_new_alert_with_a_new_start() -> None:
    steps = play([[result(s)] for s in (FAIL, PASS, FAIL)])
    assert states(steps)[2] == [(CHECK_FAILED, FIRING)]
    assert steps[2].events[0].starts_at == AT + 2 * STEP


# --- warnings ---------------------------------------------------------------------------------


def test_a_warn_result_alerts_no_one_by_default() -> None:
    steps = play([[result(WARN)]] * 3)
    assert all(not s.events and not s.records for s in steps)


def test_a_warn_result_resolves_a_firing_fail_alert() -> None:
    steps = play([[result(FAIL)], [result(WARN)]])
    assert states(steps)[1] == [(CHECK_FAILED, RESOLVED)]


def test_with_warn_severity_a_warning_alerts_at_that_severity() -> None:
    (step,) = play([[result(WARN)]], AlertingConfig(warn_severity="P3"))
    (event,) = step.events
    assert (event.labels["alertname"], event.severity) == (CHECK_WARNING, "P3")


def test_a_warning_is_never_more_urgent_than_its_check() -> None:
    (step,) = play([[result(WARN, severity="P4")]], AlertingConfig(warn_severity="P3"))
    assert step.events[0].severity == "P4"


def test_a_failing_check_inhibits_its_warning_alert() -> None:
    settings = AlertingConfig(warn_severity="P3", repeat_interval=timedelta(minutes=5))
    steps = play([[result(WARN)], [result(FAIL)], [result(FAIL)], [result(WARN)]], settings)
    assert states(steps) == [
        [(CHECK_WARNING, FIRING)],
        [(CHECK_FAILED, FIRING)],  # no repeat of the warning while the fail alert speaks
        [(CHECK_FAILED, FIRING)],
        [(CHECK_FAILED, RESOLVED), (CHECK_WARNING, FIRING)],  # the warning repeats, unresolved
    ]
    warning = fingerprint(check_labels(result(WARN), "P3", warning=True))
    assert steps[1].inhibited[warning] == fingerprint(check_labels(result(FAIL)))


# --- probe errors and inhibition --------------------------------------------------------------


def test_errors_of_one_store_and_view_are_one_probe_alert() -> None:
    (step,) = play([[result(ERROR), result(ERROR, check=COVERAGE, kind="coverage", severity="P2")]])
    (event,) = step.events
    assert dict(event.labels) == {
        "alertname": PROBE_ERROR,
        "store": "redis_prod",
        "feature_view": "user_stats",
        "severity": "P1",  # the most urgent of its checks
    }
    assert event.annotations["summary"] == (
        "featmon cannot measure user_stats on redis_prod: redis_prod: connection refused "
        "(2 checks in error)"
    )
    assert set(step.records) == {event.fingerprint}  # the checks' alerts are untouched


def test_a_blind_store_neither_resolves_nor_repeats_a_firing_check() -> None:
    settings = AlertingConfig(repeat_interval=timedelta(minutes=5))
    steps = play([[result(FAIL)], [result(ERROR)], [result(ERROR)], [result(PASS)]], settings)
    assert states(steps) == [
        [(CHECK_FAILED, FIRING)],
        [(PROBE_ERROR, FIRING)],
        [(PROBE_ERROR, FIRING)],
        [(CHECK_FAILED, RESOLVED), (PROBE_ERROR, RESOLVED)],  # measured again: resolved
    ]
    check = fingerprint(check_labels(result(FAIL)))
    assert steps[2].records[check].state is FIRING
    assert steps[2].inhibited[check] == steps[1].events[0].fingerprint


def test_an_error_is_no_evidence_even_before_the_probe_alert_fires() -> None:
    steps = play([[result(FAIL)], [result(ERROR)], [result(ERROR)]], AlertingConfig(for_runs=3))
    check = fingerprint(check_labels(result(FAIL)))
    assert steps[2].records[check].fail_streak == 1  # neither counted as failing nor passing
    assert steps[2].records[check].state is PENDING


def test_checks_measured_beside_a_firing_probe_error_neither_fire_nor_resolve() -> None:
    other = {"check": COVERAGE, "kind": "coverage"}
    steps = play(
        [
            [result(FAIL), result(PASS, **other)],
            [result(ERROR), result(FAIL, **other)],  # the probe alert fires this run
            [result(PASS), result(ERROR, **other)],  # still blind: partial errors
        ]
    )
    fresh = fingerprint(check_labels(result(FAIL)))
    coverage = fingerprint(check_labels(result(FAIL, **other)))
    assert steps[1].records[fresh].state is FIRING
    assert coverage not in steps[1].records  # its failure did not start an alert
    assert steps[2].records[fresh].state is FIRING  # its pass did not resolve it
    assert states(steps)[2] == []


def test_a_probe_error_on_one_store_does_not_inhibit_another_store() -> None:
    offline = {"check": "user_stats.freshness@offline", "store": "warehouse", "target": "offline"}
    (step,) = play([[result(ERROR), result(FAIL, **offline)]])
    assert sorted(states([step])[0]) == [(CHECK_FAILED, FIRING), (PROBE_ERROR, FIRING)]


# --- silences ---------------------------------------------------------------------------------


def silence(start: int, end: int) -> Silence:
    return Silence.model_validate(
        {
            "id": "maint-1",
            "matchers": ['store="redis_prod"'],
            "starts_at": AT + start * STEP,
            "ends_at": AT + end * STEP,
            "created_by": "ops@example.com",
            "comment": "Redis upgrade",
        }
    )


def test_a_silenced_alert_is_tracked_and_reported_as_suppressed_not_sent() -> None:
    muted = silence(0, 2)
    steps = play([[result(FAIL)]] * 3, silences=Silences((muted,)))
    assert states(steps) == [[], [], [(CHECK_FAILED, FIRING)]]  # sent when the silence ends
    assert [(s.event.state, s.silence.id) for s in steps[0].suppressed] == [(FIRING, "maint-1")]
    assert only(steps[0]).state is FIRING
    assert only(steps[1]).last_notified_at is None


def test_a_notified_alert_that_resolves_under_a_silence_still_sends_resolved() -> None:
    steps = play([[result(FAIL)], [result(PASS)]], silences=Silences((silence(1, 5),)))
    assert states(steps) == [[(CHECK_FAILED, FIRING)], [(CHECK_FAILED, RESOLVED)]]


def test_an_alert_that_fires_and_resolves_unseen_sends_nothing() -> None:
    steps = play(
        [[result(FAIL)], [result(PASS)], [result(PASS)]], silences=Silences((silence(0, 1),))
    )
    assert all(not s.events for s in steps)


# --- scope, retirement, persistence -----------------------------------------------------------


def test_a_check_removed_from_its_view_resolves_its_alert() -> None:
    other = {"check": COVERAGE, "kind": "coverage"}
    steps = play([[result(FAIL), result(PASS, **other)], [result(PASS, **other)]])
    (event,) = steps[1].events
    assert (event.labels["check"], event.state) == (FRESH, RESOLVED)


def test_alerts_of_other_views_are_untouched_by_a_run() -> None:
    (first,) = play([[result(FAIL)]])
    other_view = result(PASS, check="items.freshness@online", feature_view="items")
    (second,) = play([[other_view]], start=first.records)
    assert not second.events
    assert dict(second.records) == dict(first.records)


def test_retire_resolves_the_alerts_of_views_no_longer_configured() -> None:
    (step,) = play([[result(FAIL)]])
    later = AT + timedelta(hours=1)
    retired = retire(step.records, {"items"}, DEFAULTS, later)
    (event,) = retired.events
    assert (event.state, event.ends_at) == (RESOLVED, later)
    assert event.annotations["resolved_because"] == "feature view removed from the configuration"


def test_a_record_survives_its_json_round_trip() -> None:
    (step,) = play([[result(FAIL, labels=MappingProxyType({"team": "growth"}))]])
    record = only(step)
    assert record_from_json(record_to_json(record)) == record


def test_a_record_without_a_zone_is_refused() -> None:
    data = record_to_json(only(play([[result(FAIL)]])[0]))
    data["updated_at"] = "2024-06-01T12:00:00"
    with pytest.raises(ValueError, match="updated_at: expected an ISO 8601 time with its offset"):
        record_from_json(data)


def test_now_without_a_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        advance({}, run(0, result(FAIL)), DEFAULTS, datetime(2024, 6, 1))  # noqa: DTZ001 - the point
