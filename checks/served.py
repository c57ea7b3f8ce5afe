"""Models: what a model is served (DESIGN.md sections 2 and 3).

A model (Feast's feature service) is a named set of features across feature views. Its checks
are judged over its *requests*: each request carries every join key its views need, and is
covered when every feature of the model was present, non-null and no older than its max age at
the request's time. The requests are seen either in the model's serving log (exact: every
logged request) or in a sample of recent requests probed in the online store now.

This module holds the check-file side (the `models:` section) and its planning: each feature
reference resolved against the declared views, one `PlannedModelCheck` per check (and feature).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, ClassVar, Literal, get_args

from pydantic import Field, model_validator

from checks.duration import Duration
from checks.kinds.base import Gauge, Reading
from checks.kinds.freshness import QUANTILES
from checks.model import (
    DEFAULT_MAX_FUTURE,
    DEFAULT_SAMPLE,
    FeatureView,
    Quantile,
    Ratio,
    Severity,
    Strict,
    ordered_thresholds,
)
from checks.result import (
    Details,
    ModelCoverageDetails,
    ModelFreshnessDetails,
    ModelFreshnessRiskDetails,
    ModelNullRateDetails,
)
from checks.rules import exactly_one
from checks.schedule import DEFAULT_SCHEDULE, Schedule
from checks.source import Path

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]*$"
# A feature reference: a whole view (`user_stats`) or one feature of it (`user_stats:revenue`).
REFERENCE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]*(:[A-Za-z_][A-Za-z0-9_]*)?$"
# Feast's serving-log columns: `{view}__{feature}`, then `__timestamp` and `__status` after it.
LOG_TIMESTAMP = "__log_timestamp"
LOG_REQUEST_ID = "__request_id"


class ServingLog(Strict):
    """The model's serving log on an offline store: Feast's feature-service logging schema
    (the join keys; `{view}__{feature}`, `{view}__{feature}__timestamp` and, optionally,
    `{view}__{feature}__status` per feature; `__log_timestamp`), or a table of the same shape
    written by another server. Every request logged in the last `window` before the scheduled
    time is judged, in one aggregate query run by the store's engine."""

    store: str = Field(description="Name of an offline store in config.yaml.")
    table: str | None = Field(None, description="Table name, optionally `schema.table` (sql).")
    path: str | None = Field(
        None, description="File, directory or glob below the store's root (parquet): Feast's "
        "file logging destination is a directory of Parquet files.",
    )  # fmt: skip
    window: Duration = Field(
        timedelta(hours=1), description="Requests logged in this long before the scheduled time."
    )
    log_timestamp: str = Field(LOG_TIMESTAMP, description="Column of the request's time.")
    statuses: bool = Field(
        True,
        description="The log has Feast's `__status` columns: count the values whose status "
        "disagrees with what featmon judged (false for a log without them).",
    )

    @model_validator(mode="after")
    def _one_location(self) -> ServingLog:
        exactly_one(self, "table", "path", (" (sql)", " (parquet)"))
        return self


class RequestSample(Strict):
    """Recent requests of the model (one column per join key), probed in the online store now:
    a SQL `query` run on an offline `store`, or an `ids_file` (CSV with a header naming the join
    keys). Each view's features are read from its own online store, one read per view."""

    store: str | None = Field(None, description="Offline store the `query` runs on.")
    query: str | None = Field(None, description="SQL returning one column per join key.")
    ids_file: str | None = Field(
        None, description="CSV of recent requests, relative to the check file."
    )
    sample: int = Field(
        DEFAULT_SAMPLE, ge=1, le=1_000_000, description="Requests drawn at random per run."
    )

    @model_validator(mode="after")
    def _one_source(self) -> RequestSample:
        exactly_one(self, "query", "ids_file")
        if self.query is not None and self.store is None:
            raise ValueError("expected a `store` for the `query` to run on, found none")
        return self


class ModelCheckBase(Strict):
    name: str | None = Field(None, description="Unique check id; derived from model and kind.")
    severity: Severity = "P3"
    labels: dict[str, str] = Field(default_factory=dict)
    enabled: bool = Field(True, description="`false` switches the check off.")

    bound: ClassVar[Literal["max", "min"] | None] = "max"  # None: no thresholds of its own
    # How its latest results are exported (`monitor.metrics`): labelled by the model, never by
    # a feature view (a model's results have none).
    exported: ClassVar[tuple[Gauge, ...]] = ()

    @model_validator(mode="after")
    def _thresholds(self) -> ModelCheckBase:
        if self.bound is not None:
            warn, bound = getattr(self, "warn", None), getattr(self, self.bound, None)
            ordered_thresholds(warn, bound, self.bound)
        return self


class ModelCoverageCheck(ModelCheckBase):
    """Fraction of the model's requests whose every feature was present, non-null and no older
    than its max age at the request's time."""

    kind: Literal["coverage"]
    warn: Ratio | None = None
    min: Ratio | None = None

    bound = "min"

    details: ClassVar[type[Details]] = ModelCoverageDetails
    exported = (
        Gauge(
            "featmon_model_coverage_ratio",
            "Fraction of a model's requests whose every feature was present, non-null and no "
            "older than its max age at the request's time.",
            ("model",),
        ),
    )


class ModelFreshnessCheck(ModelCheckBase):
    """A quantile of the age of the served values at the request's time: over every served
    value (`over: values`), or over the oldest value of each request (`over: requests`)."""

    kind: Literal["freshness"]
    quantile: Quantile = "p99"
    over: Literal["values", "requests"] = "values"
    warn: Duration | None = None
    max: Duration | None = None

    details: ClassVar[type[Details]] = ModelFreshnessDetails
    exported = (
        Gauge(
            "featmon_model_freshness_seconds",
            "Age of the values a model was served at the request's time, by quantile (1 is the "
            "maximum), over every served value (over=values) or the oldest value of each "
            "request (over=requests).",
            ("model", "over", "quantile"),
            tuple(Reading(key, fixed=(f"{q:g}",)) for key, q in QUANTILES.items()),
            from_details=frozenset({"over"}),
        ),
    )


class ModelNullRateCheck(ModelCheckBase):
    """Fraction of the model's requests served no value (null, NaN or absent) for one feature
    (`view:feature`), or for each of its features when none is named."""

    kind: Literal["null_rate"]
    feature: str | None = Field(
        None, pattern=r"^[^:]+:[^:]+$", description="`view:feature`; every feature if unset."
    )
    warn: Ratio | None = None
    max: Ratio | None = None

    details: ClassVar[type[Details]] = ModelNullRateDetails
    exported = (
        Gauge(
            "featmon_model_null_ratio",
            "Fraction of a model's requests served no value (absent, null or NaN) for one "
            "feature (`view:feature`).",
            ("model", "feature"),
        ),
    )


class ModelFreshnessRiskCheck(ModelCheckBase):
    """The worst age each view's values will reach at query time, predicted from how often the
    view is materialized (its `materialized_every`) and the ages served now: with traffic spread
    over the interval, ages at query time run from the lag after a refresh up to that lag plus
    the interval, so the worst is about the median age plus half the interval. Warns (or, with
    `fail: true`, fails) when the prediction exceeds the view's max age for the model: before
    the hour before each refresh does it for real. One result per view that declares
    `materialized_every`."""

    kind: Literal["freshness_risk"]
    fail: bool = Field(False, description="Fail instead of warn when the risk is predicted.")

    bound = None  # the views' max ages are its thresholds

    details: ClassVar[type[Details]] = ModelFreshnessRiskDetails
    exported = (
        Gauge(
            "featmon_model_freshness_risk_seconds",
            "The worst age a view's values are predicted to reach at a model's query time: "
            "the median age served now plus half the view's materialization interval.",
            ("model", "view"),
            from_details=frozenset({"view"}),
        ),
    )


ModelCheck = Annotated[
    ModelCoverageCheck | ModelFreshnessCheck | ModelNullRateCheck | ModelFreshnessRiskCheck,
    Field(discriminator="kind"),
]
AnyModelCheck = (
    ModelCoverageCheck | ModelFreshnessCheck | ModelNullRateCheck | ModelFreshnessRiskCheck
)


MODEL_CHECKS: tuple[type[AnyModelCheck], ...] = get_args(AnyModelCheck)


def model_check(kind: str) -> type[AnyModelCheck] | None:
    """The model check of `kind` (None for a kind no model check has)."""
    for check in MODEL_CHECKS:
        if kind in get_args(check.model_fields["kind"].annotation):
            return check
    return None


def model_details(kind: str) -> type[Details] | None:
    """The details type of a model check of `kind` (None for a kind no model check has)."""
    check = model_check(kind)
    if check is None:
        return None
    found: type[Details] = check.details
    return found


class Model(Strict):
    """What a model is served: features across views, and the checks on its requests."""

    name: str = Field(pattern=NAME_PATTERN)
    features: tuple[Annotated[str, Field(pattern=REFERENCE_PATTERN)], ...] = Field(
        min_length=1,
        description="`view` (every feature of the view) or `view:feature`, as Feast's "
        "feature service projections.",
    )
    max_age: dict[str, Duration] = Field(
        default_factory=dict,
        description="Oldest acceptable value per view (by view name); default the view's TTL.",
    )
    max_future: Duration = Field(
        DEFAULT_MAX_FUTURE,
        description="Clock jitter: a value time up to this far after the request's time is age 0.",
    )
    owner: str | None = Field(None, description="Who is paged: the alerts' `owner` label.")
    labels: dict[str, str] = Field(default_factory=dict)
    serving_log: ServingLog | None = Field(None, description="The model's serving log (exact).")
    requests: RequestSample | None = Field(
        None, description="Without a serving log: recent requests, probed online now."
    )
    schedule: Schedule = Field(DEFAULT_SCHEDULE, description="When the daemon checks the model.")
    checks: tuple[ModelCheck, ...] = ()

    @model_validator(mode="after")
    def _one_source(self) -> Model:
        exactly_one(self, "serving_log", "requests")
        return self

    @property
    def source(self) -> Literal["serving_log", "requests"]:
        return "serving_log" if self.serving_log is not None else "requests"

    @property
    def all_labels(self) -> dict[str, str]:
        owner = {} if self.owner is None else {"owner": self.owner}
        return {**self.labels, **owner, "model": self.name}


# -- resolution against the declared views --------------------------------------------------


@dataclass(frozen=True)
class ServedView:
    """One view of a model: the features it serves the model, and their max age."""

    name: str
    join_keys: tuple[str, ...]
    features: tuple[str, ...]
    dtypes: tuple[str, ...]
    max_age: timedelta
    materialized_every: timedelta | None = None

    def column(self, feature: str) -> str:
        """The serving-log column of one of its features: `{view}__{feature}`."""
        return f"{self.name}__{feature}"


@dataclass(frozen=True)
class ServedModel:
    """A model with its references resolved: its views in the order first named, and every
    join key its requests carry (in the order the views name them)."""

    model: Model
    views: tuple[ServedView, ...]

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def join_keys(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(key for view in self.views for key in view.join_keys))

    @property
    def references(self) -> tuple[str, ...]:
        """Every served feature as `view:feature`, in order."""
        return tuple(f"{v.name}:{f}" for v in self.views for f in v.features)


def resolve(
    model: Model, views: dict[str, FeatureView], path: Path = ()
) -> tuple[ServedModel | None, list[tuple[Path, str]]]:
    """The model with its references resolved, or None and the problems, each at its path."""
    problems: list[tuple[Path, str]] = []
    wanted: dict[str, list[str]] = {}
    for index, reference in enumerate(model.features):
        view_name, _, feature = reference.partition(":")
        view = views.get(view_name)
        where: Path = (*path, "features", index)
        if view is None:
            found = f"expected a declared feature view {sorted(views)}, found {view_name!r}"
            problems.append((where, found))
        elif feature and feature not in view.features:
            found = f"expected a feature of {view_name} {sorted(view.features)}, found {feature!r}"
            problems.append((where, found))
        else:
            names = wanted.setdefault(view_name, [])
            names.extend(n for n in ((feature,) if feature else view.features) if n not in names)
    problems.extend(
        (
            (*path, "max_age", name),
            f"expected a view the model uses {sorted(wanted)}, found {name!r}",
        )
        for name in model.max_age
        if name not in wanted
    )
    served = tuple(
        ServedView(
            name=name,
            join_keys=views[name].join_keys,
            features=tuple(features),
            dtypes=tuple(views[name].features[f] for f in features),
            max_age=model.max_age.get(name, views[name].ttl),
            materialized_every=views[name].materialized_every,
        )
        for name, features in wanted.items()
    )
    model_ = ServedModel(model, served)
    references = model_.references
    problems.extend(
        (
            (*path, "checks", index, "feature"),
            f"expected a feature the model is served {list(references)}, found {check.feature!r}",
        )
        for index, check in enumerate(model.checks)
        if isinstance(check, ModelNullRateCheck)
        and check.feature is not None
        and check.feature not in references
    )
    problems.extend(
        (
            (*path, "checks", index),
            f"expected a view of the model with `materialized_every` for freshness_risk, found "
            f"none among {[v.name for v in served]}",
        )
        for index, check in enumerate(model.checks)
        if isinstance(check, ModelFreshnessRiskCheck)
        and served
        and all(v.materialized_every is None for v in served)
    )
    return (None if problems else model_), problems


@dataclass(frozen=True)
class PlannedModelCheck:
    """One model check, bound to its model and (for null rates) one `view:feature`, or (for
    freshness risk) one view."""

    id: str
    served: ServedModel
    check: AnyModelCheck
    feature: str | None
    path: Path
    view: ServedView | None = None

    @property
    def kind(self) -> str:
        return self.check.kind

    @property
    def labels(self) -> dict[str, str]:
        return {**self.served.model.all_labels, **self.check.labels}


def plan_model(served: ServedModel, path: Path = ()) -> list[PlannedModelCheck]:
    """The planned checks of one model: null rates without a feature expand to every feature."""
    out: list[PlannedModelCheck] = []
    for index, check in enumerate(served.model.checks):
        if not check.enabled:
            continue
        where: Path = (*path, "checks", index)
        if isinstance(check, ModelFreshnessRiskCheck):
            out.extend(
                PlannedModelCheck(
                    model_check_id(served.name, check, view.name), served, check, None, where, view
                )
                for view in served.views
                if view.materialized_every is not None
            )
            continue
        features: tuple[str | None, ...] = (None,)
        if isinstance(check, ModelNullRateCheck):
            features = (check.feature,) if check.feature else served.references
        out.extend(
            PlannedModelCheck(model_check_id(served.name, check, f), served, check, f, where)
            for f in features
        )
    return out


def model_check_id(model: str, check: AnyModelCheck, feature: str | None) -> str:
    """`fraud.coverage`, `fraud.freshness` (`fraud.freshness.requests` over requests),
    `fraud.null_rate.user_stats.revenue`, `fraud.freshness_risk.user_stats` (`feature` is the
    view's name then); or the check's own `name` (`.view.feature` or `.view` after it when it
    stands for one check per feature or view)."""
    middle = ""
    if isinstance(check, ModelFreshnessCheck) and check.over == "requests":
        middle = ".requests"
    suffix = "" if feature is None else "." + feature.replace(":", ".")
    if check.name:
        expanded = isinstance(check, ModelFreshnessRiskCheck) or (
            isinstance(check, ModelNullRateCheck) and check.feature is None
        )
        return check.name + (suffix if expanded else "")
    return f"{model}.{check.kind}{middle}{suffix}"
