"""What evaluation hands on: one immutable `CheckResult` per check and run, and the `RunResult`.

Details are typed per check kind; `as_json()` gives the documented JSON shape.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Literal

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
    unit: Literal["seconds", "ratio", "count"]
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
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None
    newest: datetime | None = None  # offline: the newest event time of the table
    sample: SampleInfo | None = None

    def as_json(self) -> dict[str, JSON]:
        out: dict[str, JSON] = {"p50": self.p50, "p90": self.p90, "p99": self.p99, "max": self.max}
        if self.newest is not None:
            out["newest_event_time"] = rfc3339(self.newest)
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

    def as_json(self) -> dict[str, JSON]:
        return {
            "added": list(self.added),
            "removed": list(self.removed),
            "retyped": [
                {"column": r.column, "expected": r.expected, "found": r.found} for r in self.retyped
            ],
            "counted_added": self.counted_added,
        }


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
    rows: int
    window_seconds: float

    def as_json(self) -> dict[str, JSON]:
        return {"rows": self.rows, "window_seconds": self.window_seconds}


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


def rfc3339(moment: datetime) -> str:
    """UTC, second precision or finer, with a `Z`."""
    text = moment.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")
