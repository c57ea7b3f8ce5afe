"""The alert lifecycle: from each run's results to alert records and the events to notify now.

Pure: `advance(previous, run, settings, now, report_url)` takes the persisted records and one
`RunResult` and returns a `Transition` (new records, events to send, events a silence muted,
alerts inhibited). No clock, no I/O; the daemon persists the records and sends the events.

Identity. An alert is its labels (Alertmanager practice, severity included, so changing a check's
severity ends the old alert and starts a new one): the check's and its view's user labels, then
`alertname`, `check`, `kind`, `feature_view` (a model's: `model`), `feature` (when there is one), `store` and
`severity`, which win over a user label of the same name. `alertname` tells the three kinds of
alert apart: `featmon_check_failed`, `featmon_check_warning` and `featmon_probe_error`. Values,
thresholds, the run and the report link are annotations, never identity.

States. An alert is pending from its first failing run and fires after `for_runs` consecutive
failing runs; a firing alert resolves after `resolve_after_runs` consecutive passing runs, and
while firing is notified again every `repeat_interval` (or the shortest its routes ask for). A
pending alert that passes is forgotten: it never fired. A resolved record is kept for
`keep_resolved` after it ended (for the API and the report), then dropped; a new failure of the
same identity starts a new alert either way.

Warnings. By default a `warn` result alerts no one: for the fail alert it counts as passing.
With `warn_severity` set, each check also has a warning alert, at that severity or the check's
own if less urgent; a `warn` fails it, a `pass` passes it, and while the check `fail`s the fail
alert speaks for it (the warning alert is inhibited: it neither advances nor repeats).

Probe errors. An `error` result is no evidence about the data: it neither fails nor passes the
check's alert. Each (store, feature view) of a run has its own alert, `featmon_probe_error`,
failing when any of its results is an error, at the most urgent severity of its checks. While it
fires, the check alerts of that store and view are inhibited: neither fired, resolved nor
repeated (a blind probe must not resolve a real incident), even those measured in a partial
failure.

Silences. A firing alert that is due to be notified but matched by a silence is recorded in
`Transition.suppressed` with the silence, and counts as not notified: when the silence ends it
is notified at the next run. A resolved event is sent whenever the firing was notified, even
under a silence, so that no incident is left open at a receiver; an alert that fired and
resolved unseen sends nothing.

Scope. A run covers whole feature views: an alert of a view in the run that the run no longer
produces (its check was removed, or its severity or labels changed) is resolved. Alerts of views
that left the configuration are resolved by `retire`.

Times. `starts_at` and `ends_at` are the scheduled times of the runs that fired and resolved
the alert; `last_notified_at` and the repeat and retention clocks use `now`.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict, Field, field_validator

from alerts.config import RetrySettings
from alerts.format import format_threshold, format_time, format_value
from alerts.model import AlertEvent, AlertState, about, fingerprint, subject_labels, subject_of
from alerts.silences import Silence, Silences
from checks.duration import Duration
from checks.model import Severity
from checks.result import MODEL_PREFIX, CheckResult, ErrorDetails, RunResult, Status
from checks.serde import FrozenMap, IsoTime, to_json

CHECK_FAILED = "featmon_check_failed"
CHECK_WARNING = "featmon_check_warning"
PROBE_ERROR = "featmon_probe_error"
RESERVED = frozenset({"alertname", "check", "kind", "feature_view", "feature", "store", "severity"})
RepeatFor = Callable[[Mapping[str, str]], timedelta | None]


class AlertingConfig(BaseModel):
    """`alerting:` in config.yaml: when alerts fire, repeat and resolve."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    for_runs: int = Field(1, ge=1, le=1000, description="Failing runs in a row before it fires.")
    resolve_after_runs: int = Field(
        1, ge=1, le=1000, description="Passing runs in a row before a firing alert resolves."
    )
    repeat_interval: Duration = Field(
        timedelta(hours=4), description="Notify a firing alert again this often."
    )
    warn_severity: Severity | None = Field(
        None, description="Alert on `warn` results at this severity; unset: warnings do not alert."
    )
    keep_resolved: Duration = Field(
        timedelta(days=1), description="How long a resolved alert stays in the alert state."
    )
    retry: RetrySettings = Field(
        RetrySettings(),
        description="Retries of notifications a receiver did not take, for every receiver "
        "without a `retry` of its own.",
    )

    @field_validator("repeat_interval")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError(f"expected a duration above 0s, found {value}")
        return value


@dataclass(frozen=True)
class AlertRecord:
    """The persisted state of one alert (`alerts.codec.record_to_json` gives its document)."""

    labels: FrozenMap[str, str]
    state: AlertState
    fail_streak: int  # consecutive failing runs
    pass_streak: int  # consecutive passing runs while firing
    active_since: IsoTime  # scheduled time of this episode's first failing run
    started_at: IsoTime | None  # scheduled time of the run that fired it
    ended_at: IsoTime | None  # scheduled time of the run that resolved it
    last_notified_at: IsoTime | None  # `now` of its last firing notification; None: never
    updated_at: IsoTime  # scheduled time of the last run that measured it
    annotations: FrozenMap[str, str]
    report_url: str | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")

    def event(self) -> AlertEvent:
        return AlertEvent(
            labels=self.labels,
            annotations=self.annotations,
            state=self.state,
            starts_at=self.started_at or self.active_since,
            ends_at=self.ended_at if self.state is AlertState.RESOLVED else None,
            severity=self.severity,
            report_url=self.report_url,
        )


@dataclass(frozen=True)
class Suppressed:
    """An event that was due but not sent, and the silence that muted it."""

    event: AlertEvent
    silence: Silence


@dataclass(frozen=True)
class Transition:
    """What one run changed: the records to persist and what to notify now."""

    records: Mapping[str, AlertRecord]  # by fingerprint: every alert still kept
    events: tuple[AlertEvent, ...]  # to route and send now: newly firing, repeats, resolved
    suppressed: tuple[Suppressed, ...] = ()  # due, but muted by a silence
    inhibited: Mapping[str, str] = field(  # fingerprint -> fingerprint of the inhibiting alert
        default_factory=lambda: MappingProxyType({})
    )


class Outcome(enum.Enum):
    """What one run says about one alert."""

    FAILING = "failing"
    PASSING = "passing"
    UNKNOWN = "unknown"  # no evidence: the record stays as it was


def check_labels(
    result: CheckResult, severity: str | None = None, warning: bool = False
) -> dict[str, str]:
    """The identity of a check's alert (its warning alert with `warning`)."""
    labels = {name: value for name, value in result.labels.items() if name not in RESERVED}
    labels |= {
        "alertname": CHECK_WARNING if warning else CHECK_FAILED,
        "check": result.check,
        "kind": result.kind,
        **subject_labels(result.feature_view, result.model),
        "store": result.store,
        "severity": severity or result.severity,
    }
    if result.feature:
        labels["feature"] = result.feature
    return labels


def probe_labels(
    store: str,
    feature_view: str | None,
    severity: str,
    model: str | None = None,
    owner: str | None = None,
) -> dict[str, str]:
    """The identity of "featmon cannot measure this view (or model) on this store"; a model's
    carries its `owner`, as its checks' alerts do, so that routes by owner page for it too."""
    return {
        "alertname": PROBE_ERROR,
        "store": store,
        **subject_labels(feature_view, model),
        **({"owner": owner} if model is not None and owner else {}),
        "severity": severity,
    }


@dataclass(frozen=True)
class _Seen:
    """One identity as this run sees it."""

    labels: Mapping[str, str]
    outcome: Outcome
    annotations: Mapping[str, str]
    probe: str = ""  # check alerts: the fingerprint of their store and view's probe alert
    muted_by: str = ""  # warning alerts: the fail alert that speaks while the check fails


@dataclass(frozen=True)
class _Context:
    settings: AlertingConfig
    now: datetime
    at: datetime  # the run's scheduled time
    report_url: str | None
    silences: Silences | None
    repeat_for: RepeatFor | None

    def repeat(self, labels: Mapping[str, str]) -> timedelta:
        routed = self.repeat_for(labels) if self.repeat_for is not None else None
        return routed or self.settings.repeat_interval


class _Out:
    """The transition being built by one call (local to it)."""

    def __init__(self, previous: Mapping[str, AlertRecord]) -> None:
        self.records: dict[str, AlertRecord] = dict(previous)
        self.events: list[AlertEvent] = []
        self.suppressed: list[Suppressed] = []
        self.inhibited: dict[str, str] = {}

    def put(self, fp: str, record: AlertRecord | None) -> None:
        if record is None:
            self.records.pop(fp, None)
        else:
            self.records[fp] = record

    def done(self, ctx: _Context) -> Transition:
        keep = ctx.settings.keep_resolved
        records = {
            fp: r
            for fp, r in sorted(self.records.items())
            if not (r.state is AlertState.RESOLVED and r.ended_at and ctx.now - r.ended_at >= keep)
        }
        return Transition(
            records=MappingProxyType(records),
            events=tuple(sorted(self.events, key=_order)),
            suppressed=tuple(sorted(self.suppressed, key=lambda s: _order(s.event))),
            inhibited=MappingProxyType(dict(sorted(self.inhibited.items()))),
        )


def _order(event: AlertEvent) -> list[tuple[str, str]]:
    return sorted(event.labels.items())


def advance(
    previous: Mapping[str, AlertRecord],
    run: RunResult,
    settings: AlertingConfig,
    now: datetime,
    report_url: str | None = None,
    *,
    silences: Silences | None = None,
    repeat_for: RepeatFor | None = None,
) -> Transition:
    """Advance every alert the run measures. `repeat_for(labels)` may shorten the repeat
    interval per alert (`RoutingTree.repeat_interval`); `silences` mute what is due."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    ctx = _Context(settings, now, run.scheduled_at, report_url, silences, repeat_for)
    out = _Out(previous)
    probes = _probes_seen(run, report_url)
    for fp, seen in probes.items():
        _apply(out, fp, seen, ctx)
    blind = {fp for fp in probes if _firing(out.records.get(fp))}
    checks = _checks_seen(run, settings, report_url)
    for fp, seen in checks.items():
        inhibitor = seen.probe if seen.probe in blind else ""
        if not inhibitor and seen.outcome is Outcome.UNKNOWN:
            inhibitor = seen.muted_by
        if inhibitor:
            if fp in out.records:
                out.inhibited[fp] = inhibitor
            continue
        _apply(out, fp, seen, ctx)
    views = {r.subject for r in run.results}
    for fp, record in previous.items():
        if fp not in probes and fp not in checks and subject_of(record.labels) in views:
            out.put(fp, _retire(record, ctx, "no longer evaluated", out))
    return out.done(ctx)


def retire(
    previous: Mapping[str, AlertRecord],
    views: Collection[str],
    settings: AlertingConfig,
    now: datetime,
) -> Transition:
    """After a reload: resolve the alerts of feature views no longer configured (`views` are
    those that are). Firing alerts that were notified send a resolved event."""
    ctx = _Context(settings, now, now, None, None, None)
    out = _Out(previous)
    for fp, record in previous.items():
        subject = subject_of(record.labels)
        if subject not in views:
            what = "model" if subject.startswith(MODEL_PREFIX) else "feature view"
            out.put(fp, _retire(record, ctx, f"{what} removed from the configuration", out))
    return out.done(ctx)


def _firing(record: AlertRecord | None) -> bool:
    return record is not None and record.state is AlertState.FIRING


def _apply(out: _Out, fp: str, seen: _Seen, ctx: _Context) -> None:
    before = out.records.get(fp)
    if seen.outcome is Outcome.FAILING:
        after: AlertRecord | None = _failing(before, seen, ctx)
    elif seen.outcome is Outcome.PASSING:
        after = _passing(before, seen, ctx)
    else:
        return
    out.put(fp, _notify(before, after, ctx, out))


def _failing(record: AlertRecord | None, seen: _Seen, ctx: _Context) -> AlertRecord:
    if record is None or record.state is AlertState.RESOLVED:
        record = AlertRecord(
            labels=MappingProxyType(dict(seen.labels)),
            state=AlertState.PENDING,
            fail_streak=0,
            pass_streak=0,
            active_since=ctx.at,
            started_at=None,
            ended_at=None,
            last_notified_at=None,
            updated_at=ctx.at,
            annotations=seen.annotations,
        )
    streak = record.fail_streak + 1
    fires = record.state is AlertState.PENDING and streak >= ctx.settings.for_runs
    return replace(
        record,
        state=AlertState.FIRING if fires else record.state,
        started_at=ctx.at if fires else record.started_at,
        fail_streak=streak,
        pass_streak=0,
        updated_at=ctx.at,
        annotations=seen.annotations,
        report_url=ctx.report_url,
    )


def _passing(record: AlertRecord | None, seen: _Seen, ctx: _Context) -> AlertRecord | None:
    if record is None or record.state is AlertState.PENDING:
        return None  # never fired: forgotten
    if record.state is AlertState.RESOLVED:
        return record
    streak = record.pass_streak + 1
    if streak < ctx.settings.resolve_after_runs:  # still firing: keep the failing values
        return replace(record, pass_streak=streak, fail_streak=0, updated_at=ctx.at)
    return replace(
        record,
        state=AlertState.RESOLVED,
        ended_at=ctx.at,
        pass_streak=streak,
        fail_streak=0,
        updated_at=ctx.at,
        annotations=seen.annotations,
        report_url=ctx.report_url,
    )


def _notify(
    before: AlertRecord | None, after: AlertRecord | None, ctx: _Context, out: _Out
) -> AlertRecord | None:
    """Queue what `after` needs sent; a sent firing event stamps `last_notified_at`."""
    if after is None:
        return None
    if after.state is AlertState.RESOLVED:
        if _firing(before) and after.last_notified_at is not None:
            out.events.append(after.event())
        return after
    if after.state is not AlertState.FIRING:
        return after
    last = after.last_notified_at
    if last is not None and ctx.now - last < ctx.repeat(after.labels):
        return after
    event = after.event()
    silence = ctx.silences.is_silenced(after.labels, ctx.now) if ctx.silences else None
    if silence is not None:
        out.suppressed.append(Suppressed(event, silence))
        return after
    out.events.append(event)
    return replace(after, last_notified_at=ctx.now)


def _retire(record: AlertRecord, ctx: _Context, reason: str, out: _Out) -> AlertRecord | None:
    if record.state is AlertState.PENDING:
        return None
    if record.state is AlertState.RESOLVED:
        return record
    after = replace(
        record,
        state=AlertState.RESOLVED,
        ended_at=ctx.at,
        fail_streak=0,
        annotations=MappingProxyType({**record.annotations, "resolved_because": reason}),
    )
    if record.last_notified_at is not None:
        out.events.append(after.event())
    return after


def _pairs(run: RunResult) -> dict[tuple[str, str], list[CheckResult]]:
    """The run's results by (store, subject): one probe each."""
    pairs: dict[tuple[str, str], list[CheckResult]] = {}
    for result in run.results:
        pairs.setdefault((result.store, result.subject), []).append(result)
    return pairs


def _probe_identity(results: list[CheckResult]) -> dict[str, str]:
    """At the most urgent severity of the checks the probe feeds (P1 sorts first)."""
    first = results[0]
    severity = min(r.severity for r in results)
    owner = first.labels.get("owner")
    return probe_labels(first.store, first.feature_view, severity, first.model, owner)


def _probes_seen(run: RunResult, report_url: str | None) -> dict[str, _Seen]:
    """One probe alert per (store, feature view) of the run."""
    seen: dict[str, _Seen] = {}
    for (store, _), results in _pairs(run).items():
        labels = _probe_identity(results)
        view = about(labels)
        errors = [r for r in results if r.status is Status.ERROR]
        if errors:
            reason = next(
                (r.details.reason for r in errors if isinstance(r.details, ErrorDetails)),
                "the probe could not measure",
            )
            summary = f"featmon cannot measure {view} on {store}: {reason}"
            if len(errors) > 1:
                summary += f" ({len(errors)} checks in error)"
            notes = {"summary": summary, "reason": reason, "checks_in_error": str(len(errors))}
        else:
            notes = {"summary": f"featmon measures {view} on {store} again"}
        outcome = Outcome.FAILING if errors else Outcome.PASSING
        seen[fingerprint(labels)] = _Seen(labels, outcome, _framed(notes, run, report_url))
    return seen


_FAIL_ALERT = {
    Status.FAIL: Outcome.FAILING,
    Status.WARN: Outcome.PASSING,
    Status.PASS: Outcome.PASSING,
}
_WARN_ALERT = {Status.WARN: Outcome.FAILING, Status.PASS: Outcome.PASSING}
_VERB = {Status.PASS: "passes", Status.WARN: "warns", Status.FAIL: "fails", Status.ERROR: "errs"}


def _checks_seen(
    run: RunResult, settings: AlertingConfig, report_url: str | None
) -> dict[str, _Seen]:
    """The fail alert of every check, and its warning alert when warnings alert."""
    probes = {pair: fingerprint(_probe_identity(rs)) for pair, rs in _pairs(run).items()}
    seen: dict[str, _Seen] = {}
    for result in run.results:
        probe = probes[(result.store, result.subject)]
        notes = _framed(_check_notes(result), run, report_url)
        labels = check_labels(result)
        outcome = _FAIL_ALERT.get(result.status, Outcome.UNKNOWN)
        seen[fingerprint(labels)] = _Seen(labels, outcome, notes, probe=probe)
        if settings.warn_severity is None:
            continue
        severity = max(result.severity, settings.warn_severity)  # the less urgent
        warning = check_labels(result, severity, warning=True)
        seen[fingerprint(warning)] = _Seen(
            warning,
            _WARN_ALERT.get(result.status, Outcome.UNKNOWN),
            notes,
            probe=probe,
            muted_by=fingerprint(labels) if result.status is Status.FAIL else "",
        )
    return seen


def _check_notes(result: CheckResult) -> dict[str, str]:
    value = format_value(result.value, result.threshold.unit)
    threshold = format_threshold(result.threshold)
    model = "" if result.model is None else f" for model {result.model}"  # its id may not say
    summary = (
        f"{result.check} {_VERB[result.status]}{model} on {result.store}: {value} against "
        f"{threshold}"
    )
    notes = {
        "summary": summary,
        "kind": result.kind,
        "value": value,
        "unit": result.threshold.unit,
        "threshold": threshold,
        "status": result.status.value,
        "target": result.target,
    }
    if result.value is not None:
        notes["value_raw"] = repr(float(result.value))
    notes["threshold_raw"] = json.dumps(to_json(result.threshold), separators=(",", ":"))
    if result.sample_size is not None:
        notes["sample_size"] = str(result.sample_size)
    return notes


def _framed(notes: dict[str, str], run: RunResult, report_url: str | None) -> Mapping[str, str]:
    framed = {**notes, "run_id": run.run_id, "scheduled_at": format_time(run.scheduled_at)}
    if report_url:
        framed["report_url"] = report_url
    return MappingProxyType(framed)
