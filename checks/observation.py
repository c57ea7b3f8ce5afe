"""What a probe hands to evaluation: immutable numbers and readings, never a connection.

Online probes return the sampled readings themselves (bounded by the sample size), so that
every online check, whatever its max age or required features, is computed from one read.
Offline probes return aggregate values keyed by the metrics that `plan.offline_metrics` asked for.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Literal

EntityValue = int | str | bytes
Scalar = int | float | str | bool | bytes | datetime
FeatureValue = Scalar | tuple[Scalar, ...] | None  # tuples: Feast list types


class FeatureState(enum.Enum):
    """How one feature of one sampled entity was found in the online store."""

    VALUE = "value"  # present and decoded
    NULL = "null"  # present, explicitly empty
    ABSENT = "absent"  # the entity is there but this feature was never written
    UNDECODABLE = "undecodable"  # present, but its bytes did not decode


@dataclass(frozen=True, slots=True)
class FeatureReading:
    """One feature of one sampled entity. `event_time` is the feature's own event time where
    the store keeps one per feature (Feast's SQL online stores: one row per feature); None
    where one time applies to all the entity's features (Redis: one `_ts:` field per view),
    which `EntityReading.event_time` then holds. A read may share one reading among every
    entity whose stored bytes were the same."""

    state: FeatureState
    value: FeatureValue = None
    event_time: datetime | None = None

    @property
    def is_null(self) -> bool:
        """Null, NaN or absent: what a model would be served as "no value"."""
        if self.state in (FeatureState.NULL, FeatureState.ABSENT):
            return True
        return isinstance(self.value, float) and math.isnan(self.value)


# The slots of FeatureReading, set directly: the frozen dataclass's __init__ sets each through
# object.__setattr__, which costs about twice as much (see `reading_of`).
_new_reading = object.__new__
_set_state, _set_value, _set_time = (
    vars(FeatureReading)[name].__set__ for name in ("state", "value", "event_time")
)


def reading_of(state: FeatureState, value: FeatureValue) -> FeatureReading:
    """`FeatureReading(state, value)` (no event time of its own), at half the cost: for a read
    that makes one per distinct stored value."""
    reading: FeatureReading = _new_reading(FeatureReading)
    _set_state(reading, state)
    _set_value(reading, value)
    _set_time(reading, None)
    return reading


ABSENT = FeatureReading(FeatureState.ABSENT)
UNDECODABLE = FeatureReading(FeatureState.UNDECODABLE)

FeatureIndex = Mapping[str, int]
"""Feature name -> position of its reading, shared by every entity of one read."""

_NO_READINGS: Mapping[str, FeatureReading] = MappingProxyType({})
_NO_INDEX: FeatureIndex = MappingProxyType({})


class EntityReading:
    """One sampled entity: its key, whether the online store had it, and its features.

    Compact, because a read makes one per sampled entity: the readings are a tuple in the
    order of a `FeatureIndex` that the entities of one read share (`ABSENT` where a feature
    was never written), and nothing per feature is built unless asked for. Immutable: the
    attributes are read-only properties over private slots (a frozen dataclass's __init__ costs
    several times as much, once per entity).

    `EntityReading(key, present, features)` takes readings that carry their own event times
    (the entity's is the newest); `EntityReading.of_row` takes readings in the order of an
    index and the one event time of all of them.
    """

    __slots__ = ("_cells", "_event_time", "_index", "_key", "_present")

    _key: tuple[EntityValue, ...]
    _present: bool
    _index: FeatureIndex
    _cells: tuple[FeatureReading, ...]
    _event_time: datetime | None

    def __init__(
        self,
        key: tuple[EntityValue, ...],
        present: bool,
        features: Mapping[str, FeatureReading] = _NO_READINGS,
    ) -> None:
        self._key = key
        self._present = present
        self._index = (
            {name: position for position, name in enumerate(features)} if features else _NO_INDEX
        )
        self._cells = tuple(features.values())
        times = [r.event_time for r in self._cells if r.event_time is not None]
        self._event_time = max(times) if times else None

    @classmethod
    def of_row(
        cls,
        key: tuple[EntityValue, ...],
        index: FeatureIndex,
        cells: tuple[FeatureReading, ...],
        event_time: datetime | None,
    ) -> EntityReading:
        """A present entity whose readings are `cells`, in the order of `index`, and whose
        features were all written at `event_time` (the readings carry no time of their own)."""
        entity = cls.__new__(cls)
        entity._key = key
        entity._present = True
        entity._index = index
        entity._cells = cells
        entity._event_time = event_time
        return entity

    @property
    def key(self) -> tuple[EntityValue, ...]:
        return self._key

    @property
    def present(self) -> bool:
        return self._present

    @property
    def event_time(self) -> datetime | None:
        """The view's event time for this entity: the one time of all its features, or the
        newest time of any of its features."""
        return self._event_time

    def reading(self, feature: str) -> FeatureReading:
        position = self._index.get(feature)
        return ABSENT if position is None else self._cells[position]

    @property
    def features(self) -> Mapping[str, FeatureReading]:
        """The readings of the features found (every state but ABSENT), by name."""
        cells = self._cells
        return MappingProxyType(
            {
                name: cells[position]
                for name, position in self._index.items()
                if cells[position].state is not FeatureState.ABSENT
            }
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EntityReading):
            return NotImplemented
        return (self._key, self._present, self._event_time, dict(self.features)) == (
            other._key,
            other._present,
            other._event_time,
            dict(other.features),
        )

    __hash__ = None  # type: ignore[assignment]  # equal by value; unhashable, as the dataclass was

    def __repr__(self) -> str:
        return (
            f"EntityReading(key={self._key!r}, present={self._present!r}, "
            f"features={dict(self.features)!r}, event_time={self._event_time!r})"
        )


@dataclass(frozen=True)
class OnlineObservation:
    """A sample of one feature view read from one online store."""

    store: str
    feature_view: str
    population: str  # "offline", "online" or "query": where the sampled keys came from
    entities: tuple[EntityReading, ...]
    decode_errors: int = 0  # keys or values whose bytes did not decode
    undeclared_fields: frozenset[str] = frozenset()  # stored features nothing declares

    @property
    def asked(self) -> int:
        return len(self.entities)

    @property
    def found(self) -> int:
        return sum(1 for e in self.entities if e.present)


@dataclass(frozen=True)
class RowCount:
    """Rows whose event time lies in (scheduled - window, scheduled]; all rows if no window."""

    window: timedelta | None


@dataclass(frozen=True)
class NullCount:
    """Rows with a null `column`, over the same window as `RowCount`."""

    column: str
    window: timedelta | None


@dataclass(frozen=True)
class MaxTimestamp:
    """The newest value of a timestamp column: of every row when `ahead` is None, else of the
    rows at or before scheduled + `ahead` (freshness: values not from the future)."""

    column: str
    ahead: timedelta | None = None


@dataclass(frozen=True)
class FutureCount:
    """Rows whose timestamp `column` is after scheduled + `ahead`: values from the future."""

    column: str
    ahead: timedelta


@dataclass(frozen=True)
class LatenessCount:
    """Rows in the window (by event time) whose lateness, `ingested_at` - event time, is known
    (both times present) and at most `at_most`; every known lateness when `at_most` is None.

    With fixed boundaries (`LATENESS_BOUNDS`) these counts are a cumulative histogram of
    lateness, measured as conditional counts of the one aggregate query."""

    ingested_at: str
    at_most: timedelta | None
    window: timedelta | None


# The boundaries of the lateness histogram: about x2 to x3 apart from a second to a week. A
# quantile read from it is the upper boundary of its bucket (see checks.kinds.late_arrivals).
LATENESS_BOUNDS: tuple[timedelta, ...] = tuple(
    timedelta(seconds=s)
    for s in (
        0, 1, 5, 15, 30, 60, 120, 300, 600, 900, 1800,
        3600, 7200, 21600, 43200, 86400, 172800, 604800,
    )
)  # fmt: skip


@dataclass(frozen=True)
class MaxLateness:
    """The largest `ingested_at` - event time, in seconds, of the rows in the window."""

    ingested_at: str
    window: timedelta | None


@dataclass(frozen=True)
class KeyedRows:
    """Rows in the window (by event time) none of whose `keys` is null."""

    keys: tuple[str, ...]
    window: timedelta | None


@dataclass(frozen=True)
class DistinctKeys:
    """Distinct (`keys`..., event time) tuples among the rows `KeyedRows` counts."""

    keys: tuple[str, ...]
    window: timedelta | None


ValueTest = Literal["nan", "infinite", "negative", "below", "above"]


@dataclass(frozen=True)
class ValueCount:
    """Rows in the window whose `column` is NaN (`nan`), +-infinity (`infinite`), or finite and
    below zero (`negative`), below `bound` (`below`) or above `bound` (`above`). The tests on
    finite values never count NaN or infinity, so the counts of one column do not overlap
    except `negative` within `below` a bound of zero or more."""

    column: str
    test: ValueTest
    window: timedelta | None
    bound: float | None = None


ValueStatistic = Literal["min", "max", "mean"]


@dataclass(frozen=True)
class ValueStat:
    """The min, max or mean of the finite values of `column` in the window (None without any)."""

    column: str
    stat: ValueStatistic
    window: timedelta | None


SampledMetric = RowCount | NullCount | ValueCount | ValueStat


@dataclass(frozen=True)
class Sampled:
    """`metric` measured on a random sample of `percent` percent of the table's blocks (the
    view's `offline.sample`), apart from the same metric measured exactly: a row count of a
    sample is the sample's size, never the table's."""

    metric: SampledMetric
    percent: float


OfflineMetric = (
    RowCount
    | NullCount
    | MaxTimestamp
    | FutureCount
    | LatenessCount
    | MaxLateness
    | KeyedRows
    | DistinctKeys
    | ValueCount
    | ValueStat
    | Sampled
)
MetricValue = int | float | datetime | None


@dataclass(frozen=True)
class Column:
    """One column of an offline source, with its type family (int, float, string, ...)."""

    name: str
    family: str
    native_type: str


@dataclass(frozen=True)
class OfflineObservation:
    """Aggregates of one offline table for one run, and the table's columns."""

    store: str
    feature_view: str
    source: str  # table name or Parquet path, for the report
    columns: tuple[Column, ...]
    values: Mapping[OfflineMetric, MetricValue]
    unavailable: Mapping[OfflineMetric, str] = field(
        default_factory=lambda: MappingProxyType({})
    )  # metric -> why it could not be measured (a dropped column, say)


@dataclass(frozen=True)
class OfflineRow:
    """One row of an offline source: its event time and the values of some features."""

    event_time: datetime
    values: Mapping[str, FeatureValue]


@dataclass(frozen=True)
class SkewObservation:
    """The online sample, and for each sampled entity found online with an event time, the
    latest offline row of that entity at or before that time (absent: there is none)."""

    online: OnlineObservation
    offline: Mapping[tuple[EntityValue, ...], OfflineRow]
    source: str  # the offline table or Parquet path, for the report


@dataclass(frozen=True)
class ReferenceSample:
    """Up to `size` rows of the offline source with an event time in [since, until), drawn at
    random by the engine: the values of each feature asked for, nulls included."""

    since: datetime
    until: datetime
    size: int
    values: Mapping[str, tuple[FeatureValue, ...]]
    source: str


@dataclass(frozen=True)
class DriftObservation:
    """A reference sample of the offline store and the current values: the online sample, or
    (target offline) a sample of a recent window of the offline store."""

    current: OnlineObservation | ReferenceSample
    reference: ReferenceSample


@dataclass(frozen=True)
class SchemaBaseline:
    """The accepted columns of an offline source (kept by the monitor's state database)."""

    columns: tuple[Column, ...]
    captured_at: datetime
    accepted_by: str | None = None
    comment: str | None = None


@dataclass(frozen=True)
class BaselineObservation:
    """The offline source's columns now, and its baseline; `captured` when this run stored
    the baseline (the first run of a view)."""

    offline: OfflineObservation
    baseline: SchemaBaseline
    captured: bool = False


@dataclass(frozen=True)
class PastValue:
    """One recorded value of a check. `incident`: the check failed (or erred) in that run, so
    the value is an incident, not part of the normal the baselines learn."""

    scheduled_at: datetime
    value: float
    incident: bool = False


@dataclass(frozen=True)
class MetricHistory:
    """The value an anomaly check judges and the check's past values (newest first, before
    the judged one; runs without a value left out; never the judged run itself). `current_at`
    is when the judged value was measured: this run for a check of the same view, else the
    newest recorded run."""

    of: str
    current: float | None
    current_at: datetime | None
    past: tuple[PastValue, ...]


@dataclass(frozen=True)
class PastCount:
    """One recorded count of a row_count check, with the window it counted."""

    scheduled_at: datetime
    rows: float
    window_seconds: float | None  # None: not recorded with the result
    incident: bool = False  # the check failed (or erred) in that run: see `PastValue`


@dataclass(frozen=True)
class CountHistory:
    """What a row_count check with `change` judges: this run's offline observation and the
    check's recorded counts scheduled before this run (newest first; runs without a count left
    out)."""

    offline: OfflineObservation
    past: tuple[PastCount, ...]


# -- what a model was served (checks.served) ---------------------------------------------------

# Why a request was not covered by one feature: no value (the store had none), a null or NaN
# value, a value older than its view's max age, or one from after the request (beyond
# max_future). Each missing value counts under one reason, in this order.
MISS_REASONS = ("absent", "null", "stale", "future")


@dataclass(frozen=True)
class Ages:
    """Nearest-rank quantiles of ages in seconds over `count` ages (None when there are none)."""

    count: int
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None


NO_AGES = Ages(0, None, None, None, None)


@dataclass(frozen=True)
class FeatureMisses:
    """One served feature over the requests: how many requests were not served a usable value
    of it, by reason (each request under one reason, `MISS_REASONS` order)."""

    absent: int = 0
    null: int = 0
    stale: int = 0
    future: int = 0

    @property
    def unserved(self) -> int:
        """Requests served no value (absent, null or NaN): the feature's null rate's count."""
        return self.absent + self.null


@dataclass(frozen=True)
class ViewMisses:
    """One view of a model over its requests: the requests it left uncovered (any of its
    features missing), those it alone left uncovered (fixing it alone would cover them), and
    the requests missing any of its features for each reason (a request may count under
    several reasons), with the ages of its served values."""

    uncovered: int
    only: int
    reasons: Mapping[str, int]
    ages: Ages


@dataclass(frozen=True)
class ModelObservation:
    """A model's requests in one window (serving log) or one sample (requests probed now).

    Ages are the request's time minus the value's time, for every value with a time (absent
    values have none); a value time after the request but within max_future is age 0, one
    further ahead is `future`: counted apart, never in the ages. `status_disagreements`: the
    values whose logged Feast status says otherwise than featmon judged (None: no statuses).
    """

    source: Literal["serving_log", "requests"]
    store: str
    requests: int
    covered: int
    views: Mapping[str, ViewMisses]
    features: Mapping[str, FeatureMisses]  # by `view:feature`
    value_ages: Ages
    request_ages: Ages  # the oldest value of each request with any value time
    since: datetime | None = None  # serving log: the window of request times [since, until)
    until: datetime | None = None
    status_disagreements: int | None = None
    asked: int | None = None  # requests: the sample drawn, of which `requests` were probed
    population: str | None = None


@dataclass(frozen=True)
class ProbeFailure:
    """The probe could not measure at all; every check it feeds becomes an `error` result."""

    store: str
    feature_view: str
    reason: str


# The observation of a Soda check: a verification of its contract (`monitor.stores.soda`).
Outcome = Literal["passed", "warn", "failed", "not_evaluated", "excluded"]
Diagnostic = float | int | str


@dataclass(frozen=True)
class SodaBounds:
    """One Soda threshold level: the comparisons it makes (None where it does not)."""

    greater_than: float | None = None
    greater_or_equal: float | None = None
    less_than: float | None = None
    less_or_equal: float | None = None
    equal: float | None = None
    not_equal: float | None = None

    @property
    def lower(self) -> float | None:
        if self.equal is not None:
            return self.equal
        return self.greater_than if self.greater_than is not None else self.greater_or_equal

    @property
    def upper(self) -> float | None:
        if self.equal is not None:
            return self.equal
        return self.less_than if self.less_than is not None else self.less_or_equal

    def text(self) -> str:
        """`must be > 10 and < 150`, `must be <= 0`, `must be 0`, `must not be 0`."""
        words = [
            ("", self.equal),
            ("not ", self.not_equal),
            ("> ", self.greater_than),
            (">= ", self.greater_or_equal),
            ("< ", self.less_than),
            ("<= ", self.less_or_equal),
        ]
        parts = [f"{op}{value:g}" for op, value in words if value is not None]
        return f"must be {' and '.join(parts)}" if parts else "no threshold"


@dataclass(frozen=True)
class SodaOutcome:
    """Soda's result for one check of the contract."""

    relative_path: str
    outcome: Outcome
    value: float | None  # the value Soda held against the threshold
    name: str | None  # Soda's display name of the check
    fail: SodaBounds | None = None
    warn: SodaBounds | None = None
    diagnostics: Mapping[str, Diagnostic] = field(default_factory=lambda: MappingProxyType({}))
    line: int | None = None  # the check's line in the contract


@dataclass(frozen=True)
class SodaObservation:
    """One verification of one contract on one offline store."""

    store: str
    feature_view: str
    dataset: str  # Soda's qualified dataset name: data source/database/schema/table
    outcomes: Mapping[str, SodaOutcome]  # by Soda's relative path
    errors: tuple[str, ...] = ()  # what Soda logged as errors (no secrets: see monitor.stores.soda)
    soda_version: str = ""


Observation = (
    OnlineObservation
    | OfflineObservation
    | ProbeFailure
    | SkewObservation
    | DriftObservation
    | BaselineObservation
    | MetricHistory
    | CountHistory
)
