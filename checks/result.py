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
    """`direction` max: a value above `fail` fails; min: a value below `fail` fails."""

    direction: Literal["max", "min"]
    fail: float | None
    warn: float | None
    unit: Literal["seconds", "ratio", "count"]

    def status(self, value: float) -> Status:
        if self.direction == "max":
            if self.fail is not None and value > self.fail:
                return Status.FAIL
            if self.warn is not None and value > self.warn:
                return Status.WARN
        else:
            if self.fail is not None and value < self.fail:
                return Status.FAIL
            if self.warn is not None and value < self.warn:
                return Status.WARN
        return Status.PASS

    def as_json(self) -> dict[str, JSON]:
        out: dict[str, JSON] = {}
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
class ErrorDetails:
    reason: str

    def as_json(self) -> dict[str, JSON]:
        return {"reason": self.reason}


Details = FreshnessDetails | CoverageDetails | NullRateDetails | SchemaDriftDetails | ErrorDetails


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
