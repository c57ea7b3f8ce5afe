"""The check-file model: feature views and the checks on them (DESIGN.md section 4).

Parsed once at the edge into frozen models that refuse unknown keys; check kinds are a
discriminated union on `kind`. Rules that span fields (a check naming an undeclared feature)
are found by `problems_of`, so that they too can be reported at their own line.
"""

from __future__ import annotations

import itertools
import math
import re
from datetime import timedelta
from typing import Annotated, ClassVar, Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from checks.duration import Duration, format_duration
from checks.rules import exactly_one
from checks.schedule import DEFAULT_SCHEDULE, Schedule

Severity = Literal["P1", "P2", "P3", "P4"]
Target = Literal["online", "offline"]
Dtype = Literal[
    "int", "int32", "int64", "float", "float32", "float64", "double",
    "string", "bool", "bytes", "timestamp",
]  # fmt: skip
Quantile = Literal["p50", "p90", "p99", "max"]
Population = Literal["offline", "online", "query"]

# n = z^2 p (1 - p) / e^2 with z = 1.96 (95%), p = 0.03, e = 0.01: a 3% rate within +/-1 point.
_Z95 = 1.959963984540054
DEFAULT_SAMPLE = math.ceil(_Z95**2 * 0.03 * 0.97 / 0.01**2)


def dtype_family(dtype: str) -> str:
    """The family a declared dtype belongs to: schema drift compares families, not widths."""
    if dtype.startswith("int"):
        return "int"
    if dtype.startswith("float") or dtype == "double":
        return "float"
    return dtype


class Strict(BaseModel):
    """Frozen, and unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class OnlineSource(Strict):
    """Where and how the online store is sampled for this view."""

    store: str = Field(description="Name of an online store in config.yaml.")
    sample: int = Field(
        DEFAULT_SAMPLE,
        ge=1,
        le=1_000_000,
        description="Entities sampled per run; the default keeps a 3% rate within +/-1 point at 95%.",
    )
    population: Population = Field(
        "offline",
        description="Where sampled entity ids come from: `offline` (ids seen in the offline source "
        "within `lookback`), `query` (recent serving requests: a SQL `query` run on the view's "
        "offline store, or an `ids_file`), or `online` (random keys of the online store).",
    )
    query: str | None = Field(
        None,
        description="population query: SQL run on the view's offline store, returning one column "
        "per join key (e.g. the entity ids of yesterday's serving requests).",
    )
    ids_file: str | None = Field(
        None,
        description="population query: a CSV file of recent request ids with a header naming "
        "the join keys (a single join key may omit the header); relative to the check file.",
    )
    lookback: Duration = Field(
        timedelta(days=30), description="How far back `population: offline` looks for entity ids."
    )
    table: str | None = Field(
        None, description="Online table name, when it is not the store's default for this view."
    )

    @model_validator(mode="after")
    def _population_source(self) -> OnlineSource:
        given = [name for name in ("query", "ids_file") if getattr(self, name) is not None]
        if self.population == "query" and len(given) != 1:
            found = "neither" if not given else "both"
            raise ValueError(
                f"expected exactly one of `query` or `ids_file` for population query, found {found}"
            )
        if self.population != "query" and given:
            raise ValueError(
                f"expected `{given[0]}` only with population query, found population "
                f"{self.population}"
            )
        return self


class Partition(Strict):
    """The Hive partition column of a Parquet dataset that holds each row's event date, so
    that a run reads only the partitions overlapping the windows it measures."""

    column: str = Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Partition column (`event_date` of `.../event_date=2026-12-01/part-0.parquet`).",
    )
    by: Literal["day", "month"] = Field(
        "day",
        description="What a partition holds: `day` (values `YYYY-MM-DD`) or `month` (`YYYY-MM`), "
        "the event time's date in the store's timezone.",
    )


def _percent(value: object) -> object:
    """`1%` (or `0.5 %`) as the number 1.0; anything else is left for the type to refuse."""
    if isinstance(value, str):
        match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*%\s*", value)
        if match is None:
            raise ValueError(f"expected a percentage such as `1%`, found {value!r}")
        percent = float(match.group(1))
        if not 0.01 <= percent <= 100:
            raise ValueError(f"expected a percentage between 0.01% and 100%, found {value!r}")
        return percent
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"expected a percentage with its sign, such as `{value}%`, found {value}")  # noqa: TRY004 - pydantic reports ValueError at the field's location
    return value


# The share of a table's blocks a sampled offline scan reads, in percent: 0.01% to 100%.
SamplePercent = Annotated[
    float, BeforeValidator(_percent), Field(ge=0.01, le=100, allow_inf_nan=False)
]


class OfflineSource(Strict):
    """The offline table (SQL) or Parquet path of this view."""

    store: str = Field(description="Name of an offline store in config.yaml.")
    table: str | None = Field(
        None, description="Table name, optionally `schema.table` (sql stores)."
    )
    path: str | None = Field(
        None, description="File, directory or glob below the store's root (parquet stores)."
    )
    ingested_at: str | None = Field(None, description="Column holding the ingestion time.")
    partition: Partition | None = Field(
        None,
        description="Parquet path: the Hive partition column holding the event date, so that "
        "only the partitions overlapping the measured windows are read.",
    )
    sample: SamplePercent | None = Field(
        None,
        description="Measure null_rate and range on a random sample of the table's blocks, "
        "this percentage of them (`1%`, between 0.01% and 100%): PostgreSQL `TABLESAMPLE "
        "SYSTEM`, DuckDB and Parquet `TABLESAMPLE SYSTEM` (row groups of 2048 rows). Each sampled "
        "rate carries its rows read and a 95% Wilson interval; every other metric stays exact.",
    )

    @model_validator(mode="after")
    def _one_location(self) -> OfflineSource:
        exactly_one(self, "table", "path", (" (sql)", " (parquet)"))
        if self.partition is not None and self.path is None:
            raise ValueError(
                "expected `partition` only with `path` (a Hive-partitioned Parquet dataset), "
                f"found it with table {self.table!r}"
            )
        return self


class CheckBase(Strict):
    name: str | None = Field(
        None, description="Unique check id; derived from view and kind if unset."
    )
    severity: Severity = "P3"
    labels: dict[str, str] = Field(default_factory=dict)
    target: Target | None = Field(None, description="Measure the online or the offline store.")
    enabled: bool = Field(True, description="`false` switches the check off (it is not planned).")

    # Per kind: the one store it is measured on and why (None: either store), and the name of
    # its fail threshold that `warn` must not be beyond (None: the kind orders its own).
    only: ClassVar[tuple[Target, str] | None] = None
    bound: ClassVar[Literal["max", "min"] | None] = None

    @field_validator("target")
    @classmethod
    def _measured_on(cls, value: Target | None) -> Target | None:
        if cls.only is not None and value is not None and value != cls.only[0]:
            wanted, reason = cls.only
            raise ValueError(f"expected target `{wanted}` ({reason}), found `{value}`")
        return value

    @model_validator(mode="after")
    def _thresholds(self) -> Self:
        if self.bound is not None:
            ordered_thresholds(
                getattr(self, "warn", None), getattr(self, self.bound, None), self.bound
            )
        return self


# Clock jitter between writers and the monitor: an event time at most this far after the
# scheduled time counts as age 0; one further ahead is a future value, which fails the check.
DEFAULT_MAX_FUTURE = timedelta(minutes=1)
_MAX_FUTURE_DESCRIPTION = (
    "Tolerance for clock jitter: an event time up to this far after the scheduled time counts "
    "as age 0; one further ahead is a future value (counted apart, never fresh)."
)


class FreshnessCheck(CheckBase):
    """Age of the values: online per sampled entity (a quantile), offline of the newest row at
    or before the scheduled time. Any value further ahead than `max_future` fails the check."""

    kind: Literal["freshness"]
    quantile: Quantile = "p99"
    warn: Duration | None = None
    max: Duration | None = None
    max_future: Duration = Field(DEFAULT_MAX_FUTURE, description=_MAX_FUTURE_DESCRIPTION)

    bound = "max"


class CoverageCheck(CheckBase):
    """Fraction of sampled serving requests whose required features are present, non-null, fresh."""

    kind: Literal["coverage"]
    warn: Annotated[float, Field(ge=0, le=1)] | None = None
    min: Annotated[float, Field(ge=0, le=1)] | None = None
    features: tuple[str, ...] | None = Field(None, description="Required features; default all.")
    max_age: Duration | None = Field(None, description="Oldest acceptable value; default the TTL.")
    max_future: Duration = Field(DEFAULT_MAX_FUTURE, description=_MAX_FUTURE_DESCRIPTION)

    only = ("online", "coverage is measured on the online store")

    bound = "min"


class NullRateCheck(CheckBase):
    """Fraction of sampled rows (online) or rows in the window (offline) whose value is null."""

    kind: Literal["null_rate"]
    feature: str | None = Field(None, description="One feature; every declared feature if unset.")
    warn: Annotated[float, Field(ge=0, le=1)] | None = None
    max: Annotated[float, Field(ge=0, le=1)] | None = None
    window: Duration | None = Field(None, description="Offline rows considered; default the TTL.")

    bound = "max"


class SchemaDriftCheck(CheckBase):
    """Columns added, removed or retyped against the declared schema."""

    kind: Literal["schema_drift"]
    warn: Annotated[int, Field(ge=0)] | None = None
    max: Annotated[int, Field(ge=0)] = 0
    allow_added: bool = Field(False, description="Do not count columns that nothing declares.")
    baseline: bool = Field(
        False,
        description="Compare the offline columns with a baseline kept in the state database "
        "instead of the declared schema: the first run captures it, `featmon baseline accept` "
        "replaces it. Offline only.",
    )

    bound = "max"

    @model_validator(mode="after")
    def _rules(self) -> SchemaDriftCheck:
        if self.baseline and self.target == "online":
            raise ValueError(
                "expected target `offline` with `baseline: true` (a baseline is an offline "
                "schema), found `online`"
            )
        return self


Ratio = Annotated[float, Field(ge=0, le=1)]
WINDOW = "Offline rows considered, by event time; default the view's TTL."


class LateArrivalsCheck(CheckBase):
    """Fraction of the rows in the window whose ingestion time (the view's
    `offline.ingested_at`) is more than `watermark` after their event time."""

    kind: Literal["late_arrivals"]
    watermark: Duration = Field(description="Lateness allowed: ingestion time - event time.")
    warn: Ratio | None = None
    max: Ratio | None = None
    window: Duration | None = Field(None, description=WINDOW)

    only = ("offline", "late_arrivals is measured on the offline store")

    bound = "max"


class RowCountChange(Strict):
    """Bounds on the change of the row count against earlier runs of the same check: the
    reference is the median of the last `against` recorded counts, and a fall of more than
    `max_drop` (a fraction of the reference) or a rise of more than `max_rise` fails."""

    against: int = Field(
        1, ge=1, le=1000, description="Recorded counts the reference is the median of."
    )
    min_history: int = Field(
        1, ge=1, le=1000, description="Fewer recorded counts: the change is not judged."
    )
    max_drop: Annotated[float, Field(ge=0, le=1)] | None = Field(
        None, description="A fall below the reference by more than this fraction fails."
    )
    warn_drop: Annotated[float, Field(ge=0, le=1)] | None = Field(
        None, description="A fall below the reference by more than this fraction warns."
    )
    max_rise: Annotated[float, Field(ge=0)] | None = Field(
        None, description="A rise above the reference by more than this fraction fails."
    )
    warn_rise: Annotated[float, Field(ge=0)] | None = Field(
        None, description="A rise above the reference by more than this fraction warns."
    )

    @model_validator(mode="after")
    def _rules(self) -> RowCountChange:
        bounds = (self.max_drop, self.warn_drop, self.max_rise, self.warn_rise)
        if all(b is None for b in bounds):
            raise ValueError(
                "expected at least one of `max_drop`, `warn_drop`, `max_rise` or `warn_rise`, "
                "found none"
            )
        for warn, fail in (("warn_drop", "max_drop"), ("warn_rise", "max_rise")):
            low, high = getattr(self, warn), getattr(self, fail)
            if low is not None and high is not None and low > high:
                raise ValueError(
                    f"expected `{warn}` at most `{fail}`, found {warn} {low} > {fail} {high}"
                )
        if self.min_history > self.against:
            raise ValueError(
                f"expected `min_history` at most `against`, found min_history "
                f"{self.min_history} > against {self.against}"
            )
        return self


class RowCountCheck(CheckBase):
    """Rows in the window, held between `min` and `max` (fail) and `warn_min` and `warn_max`
    (warn), and, with `change`, against the counts of earlier runs; any one of the four bounds
    may be left out."""

    kind: Literal["row_count"]
    min: Annotated[int, Field(ge=0)] | None = Field(None, description="Fewer rows fail.")
    max: Annotated[int, Field(ge=0)] | None = Field(None, description="More rows fail.")
    warn_min: Annotated[int, Field(ge=0)] | None = Field(None, description="Fewer rows warn.")
    warn_max: Annotated[int, Field(ge=0)] | None = Field(None, description="More rows warn.")
    window: Duration | None = Field(None, description=WINDOW)
    change: RowCountChange | None = Field(
        None,
        description="Bounds on the change against the median of earlier runs' counts (read "
        "from the state database).",
    )

    only = ("offline", "row_count is measured on the offline store")

    @model_validator(mode="after")
    def _bounds(self) -> RowCountCheck:
        chain = [
            (name, getattr(self, name))
            for name in ("min", "warn_min", "warn_max", "max")
            if getattr(self, name) is not None
        ]
        if not chain and self.change is None:
            raise ValueError(
                "expected at least one bound, `min`, `max`, `warn_min`, `warn_max` or "
                "`change`, found none"
            )
        for (low_name, low), (high_name, high) in itertools.pairwise(chain):
            if low > high:
                raise ValueError(
                    f"expected `{low_name}` at most `{high_name}`, found {low_name} {low} > "
                    f"{high_name} {high}"
                )
        return self


class DuplicatesCheck(CheckBase):
    """Fraction of the rows in the window that repeat the join keys and event time of another
    row: every row of a group beyond its first."""

    kind: Literal["duplicates"]
    warn: Ratio | None = None
    max: Ratio | None = None
    window: Duration | None = Field(None, description=WINDOW)

    only = ("offline", "duplicates is measured on the offline store")

    bound = "max"


Bound = Annotated[float, Field(allow_inf_nan=False)]


class RangeCheck(CheckBase):
    """Fraction of one numeric feature's non-null values that are out of range: NaN,
    +-infinity, negative (with `non_negative`), below `min_value` or above `max_value`.
    Offline over the rows in the window; online over the sampled values."""

    kind: Literal["range"]
    feature: str = Field(description="The numeric feature whose values are held in range.")
    min_value: Bound | None = Field(None, description="Smallest valid value.")
    max_value: Bound | None = Field(None, description="Largest valid value.")
    non_negative: bool = Field(False, description="A count: negative values are invalid.")
    warn: Ratio | None = None
    max: Ratio | None = None
    window: Duration | None = Field(None, description=WINDOW)

    bound = "max"

    @model_validator(mode="after")
    def _rules(self) -> RangeCheck:
        low, high = self.min_value, self.max_value
        if low is not None and high is not None and low > high:
            raise ValueError(
                f"expected `min_value` at most `max_value`, found min_value {low:g} > "
                f"max_value {high:g}"
            )
        if self.non_negative and low is not None and low < 0:
            raise ValueError(
                f"expected `min_value` of at least 0 with `non_negative: true`, found {low:g}"
            )
        return self


class SkewCheck(CheckBase):
    """Training-serving skew: the fraction of sampled entities found online whose online value
    of some compared feature differs from the offline value it was materialized from (the
    latest offline row of the entity at or before its online event time)."""

    kind: Literal["skew"]
    features: tuple[str, ...] | None = Field(None, description="Compared features; default all.")
    abs_tol: Annotated[float, Field(ge=0, allow_inf_nan=False)] = Field(
        1e-6, description="Numbers equal within max(rel_tol * max(|a|, |b|), abs_tol)."
    )
    rel_tol: Annotated[float, Field(ge=0, allow_inf_nan=False)] = Field(
        1e-6, description="Relative tolerance of numbers (float32 offline columns: about 1e-6)."
    )
    examples: int = Field(5, ge=0, le=50, description="Mismatched entities shown in details.")
    warn: Ratio | None = None
    max: Ratio | None = None

    only = ("online", "skew compares the online sample with the offline store")

    bound = "max"


class ReferenceWindow(Strict):
    """Event times of the reference rows: `{start, end}` (RFC 3339 with a zone, end exclusive),
    or `{last, ending}`: the `last` duration ending `ending` before the scheduled time."""

    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    last: Duration | None = None
    ending: Duration = Field(timedelta(0), description="How long before the run it ends.")

    @model_validator(mode="after")
    def _one_form(self) -> ReferenceWindow:
        fixed = self.start is not None or self.end is not None
        if fixed == (self.last is not None):
            found = "both" if fixed else "neither"
            raise ValueError(
                f"expected either `start` and `end` or `last` (with `ending`), found {found}"
            )
        if fixed and (self.start is None or self.end is None or self.start >= self.end):
            raise ValueError(
                f"expected `start` before `end`, found start {self.start} and end {self.end}"
            )
        if fixed and "ending" in self.model_fields_set:
            raise ValueError("expected `ending` only with `last`, found it with `start`/`end`")
        return self


class DistributionDriftCheck(CheckBase):
    """Population stability index of one feature between a reference window of the offline
    store and the current values: the online sample (target online), or a recent window of the
    offline store (target offline, `current`). Numeric: quantile bins of the reference;
    categorical: its top-k categories and `other`. Details also give the KS statistic of
    numeric features."""

    kind: Literal["distribution_drift"]
    feature: str | None = Field(None, description="One feature; every declared one if unset.")
    reference: ReferenceWindow
    current: ReferenceWindow | None = Field(
        None,
        description="Target offline: the window of the offline store the current values are "
        "drawn from (as many rows as `reference_sample`); default the last day. Implies target "
        "offline.",
    )
    bins: int = Field(10, ge=2, le=100, description="Quantile bins of numbers (10: deciles).")
    top_k: int = Field(10, ge=1, le=100, description="Categories kept apart from `other`.")
    reference_sample: int = Field(
        10_000, ge=100, le=1_000_000, description="Reference rows drawn at random by the engine."
    )
    warn: Annotated[float, Field(ge=0)] | None = 0.1
    max: Annotated[float, Field(ge=0)] | None = 0.25

    bound = "max"

    @model_validator(mode="after")
    def _current_offline(self) -> DistributionDriftCheck:
        if self.current is not None and self.target == "online":
            raise ValueError(
                "expected `current` only with target `offline` (online, the current values are "
                "the online sample), found target `online`"
            )
        return self

    def current_window(self) -> ReferenceWindow:
        """The recent offline window compared on target offline."""
        return self.current or ReferenceWindow(last=timedelta(days=1))


class AnomalyCheck(CheckBase):
    """The value of another check (`of`, a check id, or one of this view's ids without the
    view's name) against its own last `window` values in the state database: robust z =
    0.6745 (x - median) / MAD. Passes with "not enough history" below `min_history` values."""

    kind: Literal["anomaly"]
    of: str = Field(min_length=1, description="The check id whose value is watched.")
    window: int = Field(20, ge=3, le=1000, description="Past values the median and MAD use.")
    min_history: int = Field(8, ge=3, le=1000, description="Fewer past values pass unjudged.")
    direction: Literal["both", "up", "down"] = Field(
        "both", description="Which deviations count: `up` only rises, `down` only falls."
    )
    seasonality: Literal["daily", "weekly"] | None = Field(
        None,
        description="Compare with the values at the same time of day (`daily`) or of week "
        "(`weekly`) on the `window` earlier days or weeks, instead of the last `window` runs.",
    )
    tolerance: Duration = Field(
        timedelta(minutes=30),
        description="With `seasonality`: how far from the same time an earlier value may lie.",
    )
    warn: Annotated[float, Field(gt=0)] | None = None
    max: Annotated[float, Field(gt=0)] | None = Field(3.5, description="Largest |robust z|.")

    bound = "max"

    @model_validator(mode="after")
    def _rules(self) -> AnomalyCheck:
        if self.min_history > self.window:
            raise ValueError(
                f"expected `min_history` at most `window`, found min_history "
                f"{self.min_history} > window {self.window}"
            )
        if self.seasonality is not None and not (
            timedelta(0) < self.tolerance < SEASONS[self.seasonality] / 2
        ):
            raise ValueError(
                f"expected `tolerance` above 0 and below half a {self.seasonality} season "
                f"({format_duration(SEASONS[self.seasonality] / 2)}), found "
                f"{format_duration(self.tolerance)}"
            )
        return self


SEASONS = {"daily": timedelta(days=1), "weekly": timedelta(weeks=1)}  # anomaly's seasonalities


class SodaCheck(CheckBase):
    """A Soda Core v4 data contract verified on the view's offline table: one result per check
    of the contract (`<view>.soda.<key>@offline`, see `checks.soda_contract`). Needs the
    optional extra: pip install 'featmon[soda]'."""

    kind: Literal["soda"]
    contract: str | None = Field(
        None,
        description="The contract's YAML, inline (its `dataset` may be left out: featmon sets "
        "it to the view's offline table). With `contract_file`, the loader puts the file's "
        "text here.",
    )
    contract_file: str | None = Field(
        None, description="A contract YAML file, relative to the check file."
    )

    only = ("offline", "soda is measured on the offline store")

    @model_validator(mode="after")
    def _one_contract(self) -> SodaCheck:
        exactly_one(self, "contract", "contract_file")
        return self


AnyCheck = (
    FreshnessCheck
    | CoverageCheck
    | NullRateCheck
    | SchemaDriftCheck
    | LateArrivalsCheck
    | RowCountCheck
    | DuplicatesCheck
    | RangeCheck
    | SkewCheck
    | DistributionDriftCheck
    | AnomalyCheck
    | SodaCheck
)
Check = Annotated[AnyCheck, Field(discriminator="kind")]


def ordered_thresholds(
    warn: float | timedelta | None, bound: float | timedelta | None, word: str
) -> None:
    if warn is None and bound is None:
        raise ValueError(f"expected at least one threshold, `warn` or `{word}`, found neither")
    if warn is None or bound is None:
        return
    if word == "max" and warn > bound:  # type: ignore[operator]  # warn and bound are of the same orderable type, as the caller checks
        raise ValueError(
            f"expected `warn` at most `max`, found warn {_shown(warn)} > max {_shown(bound)}"
        )
    if word == "min" and warn < bound:  # type: ignore[operator]  # (the same)
        raise ValueError(
            f"expected `warn` at least `min`, found warn {_shown(warn)} < min {_shown(bound)}"
        )


def _shown(value: float | timedelta) -> str:
    """A threshold as it is written in YAML: `2h`, not `2:00:00`."""
    return format_duration(value) if isinstance(value, timedelta) else str(value)


class FeatureView(Strict):
    """A group of features sharing an entity key, a timestamp and a TTL."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")
    entity: str | Annotated[tuple[str, ...], Field(min_length=1)] = Field(
        description="Join key, or several for a compound key."
    )
    entity_types: dict[str, Dtype] = Field(
        default_factory=dict,
        description="Types of the join keys; inferred from sampled ids (int64 or string) if unset.",
    )
    ttl: Duration
    timestamp: str = Field(
        "event_timestamp", description="Event-time column of the offline source."
    )
    features: dict[str, Dtype] = Field(min_length=1)
    online: OnlineSource | None = None
    offline: OfflineSource | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    materialized_every: Duration | None = Field(
        None,
        description="How often the view is materialized into the online store (`featmon init "
        "--from-feast` reads it from the registry's materialization history): a model's "
        "`freshness_risk` check predicts from it the worst age of the view's values at "
        "query time.",
    )
    schedule: Schedule = Field(
        DEFAULT_SCHEDULE, description="When the daemon checks this view (default every 5m)."
    )
    checks: tuple[Check, ...] = ()

    @property
    def join_keys(self) -> tuple[str, ...]:
        return (self.entity,) if isinstance(self.entity, str) else self.entity
