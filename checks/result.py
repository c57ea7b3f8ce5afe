"""What evaluation hands on: one immutable `CheckResult` per check and run, and the `RunResult`.

Details are typed per check kind; `as_json()` gives the documented JSON shape.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Literal

from checks.duration import format_duration

JSON = str | int | float | bool | None | list["JSON"] | dict[str, "JSON"]


class Status(enum.Enum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"

    @property
    def rank(self) -> int:
        """0 pass, 1 warn, 2 fail, 3 error: also the `featmon check` exit code and metric value."""
        return _RANK[self]


_RANK = {Status.PASS: 0, Status.WARN: 1, Status.FAIL: 2, Status.ERROR: 3}


def worst(statuses: list[Status] | tuple[Status, ...]) -> Status:
    return max(statuses, key=lambda s: s.rank, default=Status.PASS)


@dataclass(frozen=True)
class Threshold:
    """`direction` max: a value above `fail` fails, above `warn` warns; min: below them.

    A two-sided threshold (row_count's `min` .. `max`) has direction max for its upper side and
    also a lower side: a value below `fail_min` fails, below `warn_min` warns.
    """

    direction: Literal["max", "min"]
    fail: float | None
    warn: float | None
    unit: Literal["seconds", "ratio", "count", "score", "number"]  # score: PSI, z; number: Soda
    fail_min: float | None = None
    warn_min: float | None = None

    @property
    def two_sided(self) -> bool:
        return self.fail_min is not None or self.warn_min is not None

    def status(self, value: float) -> Status:
        if self._beyond(value, self.fail, self.fail_min):
            return Status.FAIL
        if self._beyond(value, self.warn, self.warn_min):
            return Status.WARN
        return Status.PASS

    def _beyond(self, value: float, bound: float | None, lower: float | None) -> bool:
        if lower is not None and value < lower:
            return True
        if bound is None:
            return False
        return value > bound if self.direction == "max" else value < bound

    def as_json(self) -> dict[str, JSON]:
        """`{max, warn, unit}` or `{min, warn, unit}`; two-sided, the keys of the check file:
        `{min, max, warn_min, warn_max, unit}`, each present only when set."""
        out: dict[str, JSON] = {}
        if self.two_sided:
            pairs = [
                ("min", self.fail_min),
                ("max", self.fail),
                ("warn_min", self.warn_min),
                ("warn_max", self.warn),
            ]
            out |= {key: bound for key, bound in pairs if bound is not None}
        else:
            if self.fail is not None:
                out[self.direction] = self.fail
            if self.warn is not None:
                out["warn"] = self.warn
        out["unit"] = self.unit
        return out


@dataclass(frozen=True)
class Interval:
    """A 95% Wilson score interval of a sampled rate."""

    low: float
    high: float


@dataclass(frozen=True)
class SampleInfo:
    """Where the sampled entities came from and what happened to them."""

    population: str
    asked: int
    found: int
    decode_errors: int

    def as_json(self) -> dict[str, JSON]:
        return {
            "population": self.population,
            "asked": self.asked,
            "found": self.found,
            "decode_errors": self.decode_errors,
        }


@dataclass(frozen=True)
class FreshnessDetails:
    """Ages in seconds of the values at or before scheduled + `max_future_seconds` (a value
    after the scheduled time but within that tolerance is age 0). Values further ahead are
    `future`: counted apart (entities online, rows offline), never in the ages, and any of them
    fails the check; `future_ahead` is how far the furthest is after the scheduled time."""

    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None
    newest: datetime | None = None  # offline: the newest event time not from the future
    sample: SampleInfo | None = None
    future: int = 0
    future_ahead: float | None = None  # seconds after the scheduled time, of the furthest
    max_future_seconds: float | None = None

    @property
    def reason(self) -> str | None:
        """Why the check failed whatever its ages were: values from the future."""
        if not self.future:
            return None
        what = ("entity", "entities") if self.sample is not None else ("row", "rows")
        ahead = "" if self.future_ahead is None else f", up to {_spelled(self.future_ahead)} ahead"
        tolerance = _spelled(self.max_future_seconds or 0.0)
        return (
            f"{self.future} {what[self.future != 1]} with an event time in the future{ahead} "
            f"(more than max_future {tolerance} after the scheduled time)"
        )

    def as_json(self) -> dict[str, JSON]:
        out: dict[str, JSON] = {"p50": self.p50, "p90": self.p90, "p99": self.p99, "max": self.max}
        if self.newest is not None:
            out["newest_event_time"] = rfc3339(self.newest)
        out |= {
            "future": self.future,
            "future_ahead_seconds": self.future_ahead,
            "max_future_seconds": self.max_future_seconds,
        }
        if self.reason is not None:
            out["reason"] = self.reason
        if self.sample is not None:
            out |= self.sample.as_json()
        return out


@dataclass(frozen=True)
class CoverageDetails:
    covered: int
    sampled: int
    interval: Interval
    max_age_seconds: float
    required: tuple[str, ...]
    uncovered: Mapping[
        str, int
    ]  # reason -> entities: missing_key, undecodable, absent, null, stale
    sample: SampleInfo

    def as_json(self) -> dict[str, JSON]:
        return {
            "covered": self.covered,
            "sampled": self.sampled,
            "ci_low": self.interval.low,
            "ci_high": self.interval.high,
            "max_age_seconds": self.max_age_seconds,
            "required_features": list(self.required),
            "uncovered": dict(self.uncovered),
            **self.sample.as_json(),
        }


@dataclass(frozen=True)
class NullRateDetails:
    nulls: int
    rows: int
    interval: Interval | None  # sampled (online) rates only
    absent: int = 0  # online: the entity exists but the feature was never written
    window_seconds: float | None = None  # offline
    sample: SampleInfo | None = None

    def as_json(self) -> dict[str, JSON]:
        out: dict[str, JSON] = {"nulls": self.nulls, "rows": self.rows}
        if self.interval is not None:
            out |= {"ci_low": self.interval.low, "ci_high": self.interval.high}
        if self.sample is not None:
            out |= {"absent": self.absent, **self.sample.as_json()}
        if self.window_seconds is not None:
            out["window_seconds"] = self.window_seconds
        return out


@dataclass(frozen=True)
class Retyped:
    column: str
    expected: str
    found: str


@dataclass(frozen=True)
class SchemaDriftDetails:
    added: tuple[str, ...]
    removed: tuple[str, ...]
    retyped: tuple[Retyped, ...]
    counted_added: bool = True
    baseline_at: datetime | None = None  # compared with the baseline captured then
    baseline_captured: bool = False  # this run captured the baseline (the first run)

    def as_json(self) -> dict[str, JSON]:
        out: dict[str, JSON] = {
            "added": list(self.added),
            "removed": list(self.removed),
            "retyped": [
                {"column": r.column, "expected": r.expected, "found": r.found} for r in self.retyped
            ],
            "counted_added": self.counted_added,
        }
        if self.baseline_at is not None:
            out |= {
                "baseline_at": rfc3339(self.baseline_at),
                "baseline_captured": self.baseline_captured,
            }
        return out


@dataclass(frozen=True)
class LateArrivalDetails:
    """Offline late arrivals over the rows in the window whose ingestion time is known.

    Lateness = ingestion time - event time, in seconds. `p50` and `p99` are read from a
    cumulative histogram: each is the upper boundary of the bucket holding that rank, capped
    at `max` (the exact largest lateness), so the true quantile lies at or below it and above
    the bucket's lower boundary."""

    late: int
    rows: int  # rows in the window with an ingestion time
    without_ingestion_time: int  # rows in the window whose ingestion time is null
    watermark_seconds: float
    window_seconds: float
    p50: float | None
    p99: float | None
    max: float | None

    def as_json(self) -> dict[str, JSON]:
        return {
            "late": self.late,
            "rows": self.rows,
            "without_ingestion_time": self.without_ingestion_time,
            "watermark_seconds": self.watermark_seconds,
            "window_seconds": self.window_seconds,
            "lateness_p50": self.p50,
            "lateness_p99": self.p99,
            "lateness_max": self.max,
        }


@dataclass(frozen=True)
class RowCountDetails:
    """The rows of the window; with `change`, the reference (the median of the last `history`
    earlier counts), the change (rows - reference) / reference (None when the reference is 0),
    and `reason` when the change was not judged."""

    rows: int
    window_seconds: float
    history: int | None = None
    reference: float | None = None
    change: float | None = None
    reason: str | None = None

    def as_json(self) -> dict[str, JSON]:
        out: dict[str, JSON] = {"rows": self.rows, "window_seconds": self.window_seconds}
        if self.history is not None:
            out |= {"history": self.history, "reference": self.reference, "change": self.change}
        if self.reason is not None:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True)
class DuplicateDetails:
    """Rows in the window sharing join keys and event time: `duplicates` are the rows beyond
    the first of each (keys, event time) group, so duplicates = rows - distinct."""

    duplicates: int
    rows: int  # rows in the window whose join keys are all non-null
    distinct: int  # distinct (join keys, event time)
    keys: tuple[str, ...]
    window_seconds: float

    def as_json(self) -> dict[str, JSON]:
        return {
            "duplicates": self.duplicates,
            "rows": self.rows,
            "distinct": self.distinct,
            "keys": list(self.keys),
            "window_seconds": self.window_seconds,
        }


@dataclass(frozen=True)
class RangeDetails:
    """One feature's non-null values: how many are out of range, by reason (each value counted
    under one reason: nan, infinite, negative, below_min, above_max; None where the check does
    not look), and min, max, mean of the finite values."""

    rows: int
    nan: int
    infinite: int
    negative: int | None  # checked with `non_negative`
    below_min: int | None  # finite, below min_value (negatives counted under `negative`)
    above_max: int | None
    min: float | None
    max: float | None
    mean: float | None
    min_value: float | None
    max_value: float | None
    window_seconds: float | None = None  # offline
    interval: Interval | None = None  # online: a sampled rate
    sample: SampleInfo | None = None

    @property
    def out_of_range(self) -> int:
        reasons = (self.nan, self.infinite, self.negative, self.below_min, self.above_max)
        return sum(count for count in reasons if count is not None)

    def as_json(self) -> dict[str, JSON]:
        out: dict[str, JSON] = {
            "rows": self.rows,
            "out_of_range": self.out_of_range,
            "nan": self.nan,
            "infinite": self.infinite,
            "negative": self.negative,
            "below_min": self.below_min,
            "above_max": self.above_max,
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
            "min_value": self.min_value,
            "max_value": self.max_value,
        }
        if self.window_seconds is not None:
            out["window_seconds"] = self.window_seconds
        if self.interval is not None:
            out |= {"ci_low": self.interval.low, "ci_high": self.interval.high}
        if self.sample is not None:
            out |= self.sample.as_json()
        return out


Shown = str | int | float | bool | None  # a feature value as the report shows it


@dataclass(frozen=True)
class SkewExample:
    """One mismatched entity: its key, and each differing feature's online and offline value."""

    key: tuple[Shown, ...]
    online_time: datetime
    offline_time: datetime
    differences: tuple[tuple[str, Shown, Shown], ...]  # feature, online, offline

    def as_json(self) -> dict[str, JSON]:
        return {
            "key": list(self.key),
            "online_event_time": rfc3339(self.online_time),
            "offline_event_time": rfc3339(self.offline_time),
            "differences": [
                {"feature": f, "online": on, "offline": off} for f, on, off in self.differences
            ],
        }


@dataclass(frozen=True)
class SkewDetails:
    """Entities compared (found online with an event time and an offline row at or before it),
    those with any feature differing, per-feature mismatch counts, and a few examples."""

    mismatched: int
    compared: int
    without_offline_row: int  # found online, but no offline row at or before its event time
    interval: Interval
    per_feature: Mapping[str, int]
    examples: tuple[SkewExample, ...]
    abs_tol: float
    rel_tol: float
    source: str
    sample: SampleInfo

    def as_json(self) -> dict[str, JSON]:
        return {
            "mismatched": self.mismatched,
            "compared": self.compared,
            "without_offline_row": self.without_offline_row,
            "ci_low": self.interval.low,
            "ci_high": self.interval.high,
            "per_feature": dict(self.per_feature),
            "examples": [e.as_json() for e in self.examples],
            "abs_tol": self.abs_tol,
            "rel_tol": self.rel_tol,
            "offline_source": self.source,
            **self.sample.as_json(),
        }


@dataclass(frozen=True)
class DriftBin:
    """One bin: its label (`(1.5, 2.5]`, a category, `other`) and the fraction of each side."""

    label: str
    reference: float
    current: float


@dataclass(frozen=True)
class DriftDetails:
    """PSI = sum over bins of (current - reference) * ln(current / reference), each fraction at
    least `epsilon`; `ks` the two-sample Kolmogorov-Smirnov statistic (numeric features)."""

    psi: float
    ks: float | None
    categorical: bool
    reference_rows: int  # non-null reference values
    current_rows: int  # non-null current values
    reference_since: datetime
    reference_until: datetime
    epsilon: float
    bins: tuple[DriftBin, ...]
    sample: SampleInfo | None  # the online sample; None on target offline
    current_since: datetime | None = None  # target offline: the current window [since, until)
    current_until: datetime | None = None

    def as_json(self) -> dict[str, JSON]:
        current: dict[str, JSON] = (
            self.sample.as_json()
            if self.sample is not None
            else {
                "current_since": None
                if self.current_since is None
                else rfc3339(self.current_since),
                "current_until": None
                if self.current_until is None
                else rfc3339(self.current_until),
            }
        )
        return {
            "psi": self.psi,
            "ks": self.ks,
            "categorical": self.categorical,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "reference_since": rfc3339(self.reference_since),
            "reference_until": rfc3339(self.reference_until),
            "epsilon": self.epsilon,
            "bins": [
                {"bin": b.label, "reference": b.reference, "current": b.current} for b in self.bins
            ],
            **current,
        }


@dataclass(frozen=True)
class AnomalyDetails:
    """The judged value against the median and MAD of its past values. `scale` says what
    divided the deviation: `mad` (0.6745 (x - median) / MAD), `mean_ad` (MAD = 0: (x - median)
    / (1.2533 mean absolute deviation)) or `constant` (every past value equal: z 0 when x
    equals them, else +-`Z_CAP`). `reason` is set when the value was not judged."""

    of: str
    current: float | None
    current_at: datetime | None
    history: int  # past values used
    min_history: int
    median: float | None
    mad: float | None
    z: float | None
    scale: str | None
    direction: str
    reason: str | None = None

    def as_json(self) -> dict[str, JSON]:
        return {
            "of": self.of,
            "current": self.current,
            "current_at": rfc3339(self.current_at) if self.current_at is not None else None,
            "history": self.history,
            "min_history": self.min_history,
            "median": self.median,
            "mad": self.mad,
            "z": self.z,
            "scale": self.scale,
            "direction": self.direction,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class SodaDetails:
    """One check of a Soda Core contract: its identity in the contract, Soda's outcome and
    threshold (as Soda states it), and Soda's diagnostic values (missing_count, ...)."""

    soda_check: str  # Soda's relative path: checks.row_count, columns.revenue.checks.missing
    name: str | None
    type: str
    column: str | None
    outcome: str  # passed, warn, failed, not_evaluated, excluded
    threshold: str  # `must be < 5 (warn: must be < 2)`
    diagnostics: Mapping[str, float | int | str]
    dataset: str
    contract_line: int | None
    errors: tuple[str, ...] = ()
    soda_version: str = ""

    def as_json(self) -> dict[str, JSON]:
        return {
            "soda_check": self.soda_check,
            "name": self.name,
            "type": self.type,
            "column": self.column,
            "outcome": self.outcome,
            "threshold": self.threshold,
            "diagnostics": dict(self.diagnostics),
            "dataset": self.dataset,
            "contract_line": self.contract_line,
            "errors": list(self.errors),
            "soda_version": self.soda_version,
        }


@dataclass(frozen=True)
class ErrorDetails:
    reason: str

    def as_json(self) -> dict[str, JSON]:
        return {"reason": self.reason}


Details = (
    FreshnessDetails
    | CoverageDetails
    | NullRateDetails
    | SchemaDriftDetails
    | LateArrivalDetails
    | RowCountDetails
    | DuplicateDetails
    | RangeDetails
    | SkewDetails
    | DriftDetails
    | AnomalyDetails
    | SodaDetails
    | ErrorDetails
)


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome in one run."""

    check: str
    kind: str
    feature_view: str
    feature: str | None
    store: str
    target: str
    status: Status
    severity: str
    value: float | None
    threshold: Threshold
    sample_size: int | None
    details: Details
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def as_json(self) -> dict[str, JSON]:
        return {
            "check": self.check,
            "kind": self.kind,
            "feature_view": self.feature_view,
            "feature": self.feature,
            "store": self.store,
            "target": self.target,
            "status": self.status.value,
            "severity": self.severity,
            "value": self.value,
            "threshold": self.threshold.as_json(),
            "sample_size": self.sample_size,
            "details": self.details.as_json(),
            "labels": dict(self.labels),
        }


@dataclass(frozen=True)
class RunResult:
    """One run: every result, with the times that frame it."""

    run_id: str
    scheduled_at: datetime
    started_at: datetime
    finished_at: datetime
    results: tuple[CheckResult, ...]

    @property
    def status(self) -> Status:
        return worst([r.status for r in self.results])

    @property
    def exit_code(self) -> int:
        """0 all pass, 1 warnings only, 2 any failure, 3 any error."""
        return self.status.rank

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status}
        for r in self.results:
            out[r.status.value] += 1
        return out

    def as_json(self) -> dict[str, JSON]:
        return {
            "run_id": self.run_id,
            "scheduled_at": rfc3339(self.scheduled_at),
            "started_at": rfc3339(self.started_at),
            "finished_at": rfc3339(self.finished_at),
            "status": self.status.value,
            "counts": dict(self.counts()),
            "results": [r.as_json() for r in self.results],
        }


def _spelled(seconds: float) -> str:
    """Whole seconds as a duration is written in a check file: 10d15h, 1m, 0s."""
    return format_duration(timedelta(seconds=round(seconds)))


def rfc3339(moment: datetime) -> str:
    """UTC, second precision or finer, with a `Z`."""
    text = moment.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")
