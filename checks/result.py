"""What evaluation hands on: one immutable `CheckResult` per check and run, and the `RunResult`.

Details are typed per check kind; `checks.serde.to_json` gives the documented JSON shape, which
the field declarations below describe (JSON names, flattened parts, keys left out), and
`checks.serde.from_json` reads it back: the state database, `featmon check --format json` and
the HTTP API all use that one serializer.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import reduce
from operator import or_
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    BeforeValidator,
    Discriminator,
    Field,
    GetCoreSchemaHandler,
    PlainSerializer,
    Tag,
)
from pydantic_core import CoreSchema, core_schema

from checks.duration import format_duration
from checks.errors import UnknownKind
from checks.serde import FLAT, JSON, FrozenMap, Serde, omitted

__all__ = ["JSON"]


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

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        """The JSON of the check file: `{max, warn, unit}` or `{min, warn, unit}`; two-sided
        `{min, max, warn_min, warn_max, unit}`, each bound present only when set. A warn-only
        one-sided threshold does not keep its direction: it reads back as `max`."""
        serialization = core_schema.plain_serializer_function_ser_schema(_threshold_json)
        return core_schema.no_info_before_validator_function(
            _threshold_fields, handler(source), serialization=serialization
        )


def _threshold_json(t: Threshold) -> dict[str, JSON]:
    if t.two_sided:
        pairs = {"min": t.fail_min, "max": t.fail, "warn_min": t.warn_min, "warn_max": t.warn}
    else:
        pairs = {t.direction: t.fail, "warn": t.warn}
    return {key: bound for key, bound in pairs.items() if bound is not None} | {"unit": t.unit}


def _threshold_fields(doc: object) -> object:
    if not isinstance(doc, Mapping):
        return doc
    if {"warn_min", "warn_max"} & set(doc) or {"min", "max"} <= set(doc):
        return {
            "direction": "max",
            "fail": doc.get("max"),
            "warn": doc.get("warn_max"),
            "unit": doc.get("unit"),
            "fail_min": doc.get("min"),
            "warn_min": doc.get("warn_min"),
        }
    direction = "min" if "min" in doc else "max"
    return {
        "direction": direction,
        "fail": doc.get(direction),
        "warn": doc.get("warn"),
        "unit": doc.get("unit"),
    }


@dataclass(frozen=True)
class Interval:
    """A 95% Wilson score interval of a sampled rate."""

    low: Annotated[float, Field(alias="ci_low")]
    high: Annotated[float, Field(alias="ci_high")]


@dataclass(frozen=True)
class SampleInfo:
    """Where the sampled entities came from and what happened to them."""

    population: str
    asked: int
    found: int
    decode_errors: int


@dataclass(frozen=True)
class FreshnessDetails(Serde):
    """Ages in seconds of the values at or before scheduled + `max_future_seconds` (a value
    after the scheduled time but within that tolerance is age 0). Values further ahead are
    `future`: counted apart (entities online, rows offline), never in the ages, and any of them
    fails the check; `future_ahead` is how far the furthest is after the scheduled time."""

    JSON_COMPUTED: ClassVar[tuple[str, ...]] = ("reason",)

    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None
    # offline: the newest event time not from the future
    newest: Annotated[UtcTime | None, Field(alias="newest_event_time")] = field(
        default=None, metadata=omitted(lambda d: d.newest is None)
    )
    sample: SampleInfo | None = field(default=None, metadata=FLAT)
    future: int = 0  # 0 too in results recorded before it was counted
    # seconds after the scheduled time, of the furthest
    future_ahead: Annotated[float | None, Field(alias="future_ahead_seconds")] = None
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


@dataclass(frozen=True)
class CoverageDetails(Serde):
    covered: int
    sampled: int
    interval: Interval = field(metadata=FLAT)
    max_age_seconds: float
    required: Annotated[tuple[str, ...], Field(alias="required_features")]
    # reason -> entities: missing_key, undecodable, absent, null, stale
    uncovered: FrozenMap[str, int]
    sample: SampleInfo = field(metadata=FLAT)


@dataclass(frozen=True)
class NullRateDetails(Serde):
    nulls: int
    rows: int
    interval: Interval | None = field(metadata=FLAT)  # sampled (online) rates only
    # online: the entity exists but the feature was never written
    absent: int = field(default=0, metadata=omitted(lambda d: d.sample is None))
    # offline
    window_seconds: float | None = field(
        default=None, metadata=omitted(lambda d: d.window_seconds is None)
    )
    sample: SampleInfo | None = field(default=None, metadata=FLAT)


@dataclass(frozen=True)
class Retyped:
    column: str
    expected: str
    found: str


@dataclass(frozen=True)
class SchemaDriftDetails(Serde):
    added: tuple[str, ...]
    removed: tuple[str, ...]
    retyped: tuple[Retyped, ...]
    counted_added: bool = True
    # compared with the baseline captured then
    baseline_at: UtcTime | None = field(
        default=None, metadata=omitted(lambda d: d.baseline_at is None)
    )
    # this run captured the baseline (the first run)
    baseline_captured: bool = field(
        default=False, metadata=omitted(lambda d: d.baseline_at is None)
    )


@dataclass(frozen=True)
class LateArrivalDetails(Serde):
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
    p50: Annotated[float | None, Field(alias="lateness_p50")]
    p99: Annotated[float | None, Field(alias="lateness_p99")]
    max: Annotated[float | None, Field(alias="lateness_max")]


@dataclass(frozen=True)
class RowCountDetails(Serde):
    """The rows of the window; with `change`, the reference (the median of the last `history`
    earlier counts), the change (rows - reference) / reference (None when the reference is 0),
    `incidents` (earlier counts left out because the check failed or erred in their run; not
    written when 0, as results of earlier versions have it) and `reason` when the change was
    not judged."""

    rows: int
    window_seconds: float
    history: int | None = field(default=None, metadata=omitted(lambda d: d.history is None))
    reference: float | None = field(default=None, metadata=omitted(lambda d: d.history is None))
    change: float | None = field(default=None, metadata=omitted(lambda d: d.history is None))
    reason: str | None = field(default=None, metadata=omitted(lambda d: d.reason is None))
    incidents: int = field(default=0, metadata=omitted(lambda d: d.incidents == 0))


@dataclass(frozen=True)
class DuplicateDetails(Serde):
    """Rows in the window sharing join keys and event time: `duplicates` are the rows beyond
    the first of each (keys, event time) group, so duplicates = rows - distinct."""

    duplicates: int
    rows: int  # rows in the window whose join keys are all non-null
    distinct: int  # distinct (join keys, event time)
    keys: tuple[str, ...]
    window_seconds: float


@dataclass(frozen=True)
class RangeDetails(Serde):
    """One feature's non-null values: how many are out of range, by reason (each value counted
    under one reason: nan, infinite, negative, below_min, above_max; None where the check does
    not look), and min, max, mean of the finite values."""

    JSON_COMPUTED: ClassVar[tuple[str, ...]] = ("out_of_range",)

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
    # offline
    window_seconds: float | None = field(
        default=None, metadata=omitted(lambda d: d.window_seconds is None)
    )
    interval: Interval | None = field(default=None, metadata=FLAT)  # online: a sampled rate
    sample: SampleInfo | None = field(default=None, metadata=FLAT)

    @property
    def out_of_range(self) -> int:
        reasons = (self.nan, self.infinite, self.negative, self.below_min, self.above_max)
        return sum(count for count in reasons if count is not None)


Shown = str | int | float | bool | None  # a feature value as the report shows it


@dataclass(frozen=True)
class SkewExample:
    """One mismatched entity: its key, and each differing feature's online and offline value."""

    key: tuple[Shown, ...]
    online_time: Annotated[UtcTime, Field(alias="online_event_time")]
    offline_time: Annotated[UtcTime, Field(alias="offline_event_time")]
    # feature, online, offline; in JSON `{feature, online, offline}` objects
    differences: Annotated[
        tuple[tuple[str, Shown, Shown], ...],
        PlainSerializer(lambda diffs: [dict(zip(_DIFFERENCE, d, strict=True)) for d in diffs]),
        BeforeValidator(lambda docs: [[doc[key] for key in _DIFFERENCE] for doc in docs]),
    ]


_DIFFERENCE = ("feature", "online", "offline")


@dataclass(frozen=True)
class SkewDetails(Serde):
    """Entities compared (found online with an event time and an offline row at or before it),
    those with any feature differing, per-feature mismatch counts, and a few examples."""

    mismatched: int
    compared: int
    without_offline_row: int  # found online, but no offline row at or before its event time
    interval: Interval = field(metadata=FLAT)
    per_feature: FrozenMap[str, int]
    examples: tuple[SkewExample, ...]
    abs_tol: float
    rel_tol: float
    source: Annotated[str, Field(alias="offline_source")]
    sample: SampleInfo = field(metadata=FLAT)


@dataclass(frozen=True)
class DriftBin:
    """One bin: its label (`(1.5, 2.5]`, a category, `other`) and the fraction of each side."""

    label: Annotated[str, Field(alias="bin")]
    reference: float
    current: float


@dataclass(frozen=True)
class DriftDetails(Serde):
    """PSI = sum over bins of (current - reference) * ln(current / reference), each fraction at
    least `epsilon`; `ks` the two-sample Kolmogorov-Smirnov statistic (numeric features)."""

    psi: float
    ks: float | None
    categorical: bool
    reference_rows: int  # non-null reference values
    current_rows: int  # non-null current values
    reference_since: UtcTime
    reference_until: UtcTime
    epsilon: float
    bins: tuple[DriftBin, ...]
    # the online sample; None on target offline
    sample: SampleInfo | None = field(metadata=FLAT)
    # target offline: the current window [since, until)
    current_since: UtcTime | None = field(
        default=None, metadata=omitted(lambda d: d.sample is not None)
    )
    current_until: UtcTime | None = field(
        default=None, metadata=omitted(lambda d: d.sample is not None)
    )


@dataclass(frozen=True)
class AnomalyDetails(Serde):
    """The judged value against the median and MAD of its past values. `scale` says what
    divided the deviation: `mad` (0.6745 (x - median) / MAD), `mean_ad` (MAD = 0: (x - median)
    / (1.2533 mean absolute deviation)) or `constant` (every past value equal: z 0 when x
    equals them, else +-`Z_CAP`). `incidents`: past values left out because the watched check
    failed or erred in their run (not written when 0, as results of earlier versions have it).
    `reason` is set when the value was not judged."""

    of: str
    current: float | None
    current_at: UtcTime | None
    history: int  # past values used
    min_history: int
    median: float | None
    mad: float | None
    z: float | None
    scale: str | None
    direction: str
    reason: str | None = None
    incidents: int = field(default=0, metadata=omitted(lambda d: d.incidents == 0))


@dataclass(frozen=True)
class SodaDetails(Serde):
    """One check of a Soda Core contract: its identity in the contract, Soda's outcome and
    threshold (as Soda states it), and Soda's diagnostic values (missing_count, ...)."""

    soda_check: str  # Soda's relative path: checks.row_count, columns.revenue.checks.missing
    name: str | None
    type: str
    column: str | None
    outcome: str  # passed, warn, failed, not_evaluated, excluded
    threshold: str  # `must be < 5 (warn: must be < 2)`
    diagnostics: FrozenMap[str, float | int | str]
    dataset: str
    contract_line: int | None
    errors: tuple[str, ...] = ()
    soda_version: str = ""


@dataclass(frozen=True)
class ViewCoverage:
    """One view of a model: the requests it left uncovered, those it alone left uncovered
    (the coverage fixing it would give back), and the requests missing any of its features
    for each reason; `p99` the 99th percentile age of its served values."""

    view: str
    uncovered: int
    only: int
    reasons: FrozenMap[str, int]
    max_age_seconds: float
    p99: Annotated[float | None, Field(alias="age_p99")] = None


@dataclass(frozen=True)
class ServedFrom(Serde):
    """Where a model's requests were seen: its serving log over [since, until) (every logged
    request), or a sample of recent requests probed now (`asked` drawn, `population` where)."""

    source: str  # serving_log, requests
    since: UtcTime | None = field(default=None, metadata=omitted(lambda d: d.since is None))
    until: UtcTime | None = field(default=None, metadata=omitted(lambda d: d.until is None))
    asked: int | None = field(default=None, metadata=omitted(lambda d: d.asked is None))
    population: str | None = field(default=None, metadata=omitted(lambda d: d.population is None))


@dataclass(frozen=True)
class ModelCoverageDetails(Serde):
    """A model's requests covered (every feature present, non-null, no older than its max age
    at the request's time), and why the others were not: per view (worst first) and per
    feature (`view:feature` -> reason -> requests). `interval`: a sample's 95% interval (None
    over a serving log, which is exact). `status_disagreements`: logged values whose Feast
    status says otherwise than their value and time (None without statuses)."""

    covered: int
    requests: int
    interval: Interval | None = field(metadata=FLAT)
    views: tuple[ViewCoverage, ...]
    features: FrozenMap[str, FrozenMap[str, int]]
    served_from: ServedFrom = field(metadata=FLAT)
    status_disagreements: int | None = None


@dataclass(frozen=True)
class ModelFreshnessDetails(Serde):
    """Ages in seconds at the request's time, over every served value (`over` values) or the
    oldest value of each request (`over` requests); `ages` how many; `future` values further
    than max_future after their request, counted apart. Per view, its values' p50 and p99, and
    `max_age` the oldest its values may be (seconds; absent in results judged before it was
    kept)."""

    over: str
    ages: int
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None
    future: int
    views: FrozenMap[str, FrozenMap[str, float | None]]
    served_from: ServedFrom = field(metadata=FLAT)


@dataclass(frozen=True)
class ModelFreshnessRiskDetails(Serde):
    """The worst age one view's values are predicted to reach at query time: the median age
    served now plus half the materialization interval (ages run from the lag after a refresh
    to that lag plus the interval), against the view's max age for the model."""

    view: str
    materialized_every_seconds: float
    p50: Annotated[float, Field(alias="age_p50")]
    observed_max: Annotated[float | None, Field(alias="age_max")]
    predicted: Annotated[float, Field(alias="predicted_worst_age")]
    max_age_seconds: float
    served_from: ServedFrom = field(metadata=FLAT)


@dataclass(frozen=True)
class ModelNullRateDetails(Serde):
    """Requests served no value of one feature: `absent` (the store had none) and `null` (null
    or NaN), over `requests`; `interval` of a sample (None over a serving log)."""

    absent: int
    null: int
    requests: int
    interval: Interval | None = field(metadata=FLAT)
    served_from: ServedFrom = field(metadata=FLAT)


@dataclass(frozen=True)
class ErrorDetails(Serde):
    reason: str


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
    | ModelCoverageDetails
    | ModelFreshnessDetails
    | ModelNullRateDetails
    | ModelFreshnessRiskDetails
    | ErrorDetails
)

_TAG = "__details__"


def _details_tag(details: object) -> object:
    """The tag of a result's details is the name of their type; a document carries it under
    `_TAG`, put there by `CheckResult._json_in` from the result's kind."""
    return details.get(_TAG) if isinstance(details, Mapping) else type(details).__name__


if TYPE_CHECKING:
    TaggedDetails = Details
else:  # the union of `Details`, each type tagged by its name
    TaggedDetails = Annotated[
        reduce(or_, (Annotated[t, Tag(t.__name__)] for t in get_args(Details))),
        Discriminator(
            _details_tag,
            custom_error_type="unknown_kind",
            custom_error_message="expected the details of a check kind featmon knows",
        ),
    ]


@dataclass(frozen=True)
class CheckResult(Serde):
    """One check's outcome in one run."""

    check: str
    kind: str
    feature_view: str | None  # None: a model's check
    feature: str | None
    store: str
    target: str
    status: Status
    severity: str
    value: float | None
    threshold: Threshold
    sample_size: int | None
    details: TaggedDetails
    labels: FrozenMap[str, str] = field(default_factory=lambda: MappingProxyType({}))
    model: str | None = field(default=None, metadata=omitted(lambda r: r.model is None))

    @property
    def subject(self) -> str:
        """What the result is about: its feature view's name, or `model:<name>` (a view's
        name cannot hold a colon). Runs, claims and alert scopes are keyed by it."""
        return subject_key(self.feature_view, self.model)

    @classmethod
    def _json_in(cls, doc: dict[str, Any]) -> dict[str, Any]:
        """Details carry no tag of their own in JSON: they are read as the details type of the
        result's kind, or as an error's when they hold its `reason` only."""
        details = doc.get("details")
        if isinstance(details, Mapping) and _TAG not in details:
            tag = _details_of(doc.get("kind"), details, model=doc.get("model") is not None)
            doc["details"] = {**details, _TAG: tag}
        return doc


MODEL_PREFIX = "model:"


def subject_key(feature_view: str | None, model: str | None) -> str:
    """A view's name, or `model:<name>` for a model (see `CheckResult.subject`)."""
    if model is not None:
        return MODEL_PREFIX + model
    return feature_view or ""


def _details_of(kind: object, details: Mapping[str, object], *, model: bool) -> str | None:
    """The name of the details type of `kind` (the registry of kinds says it; a model's check
    has its own), or of an error's when `details` hold a reason only; None for a kind nobody
    declares."""
    from checks.kinds import kind_of  # noqa: PLC0415 - the kinds import this module

    if set(details) == {"reason"}:
        return ErrorDetails.__name__
    if model:
        from checks.served import model_details  # noqa: PLC0415 - checks.served imports this module

        found = model_details(str(kind))
        return None if found is None else found.__name__
    try:
        return kind_of(str(kind)).details.__name__
    except UnknownKind:
        return None


@dataclass(frozen=True)
class RunResult(Serde):
    """One run: every result, with the times that frame it."""

    JSON_COMPUTED: ClassVar[tuple[str, ...]] = ("status", "counts")

    run_id: str
    scheduled_at: UtcTime
    started_at: UtcTime
    finished_at: UtcTime
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


def _spelled(seconds: float) -> str:
    """Whole seconds as a duration is written in a check file: 10d15h, 1m, 0s."""
    return format_duration(timedelta(seconds=round(seconds)))


def rfc3339(moment: datetime) -> str:
    """UTC, second precision or finer, with a `Z`."""
    text = moment.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


UtcTime = Annotated[datetime, PlainSerializer(rfc3339, when_used="json")]
"""A time shown in UTC with a `Z`, as `rfc3339` writes it."""
