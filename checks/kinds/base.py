"""What every check kind shares: the `Kind` each kind module declares (what it measures, how
it judges each observation it accepts, how its results are exported), and building a result
from a planned check."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, Generic, Literal, Protocol, TypeVar

from checks.model import AnyCheck, FeatureView, Target
from checks.observation import OfflineMetric, OnlineObservation, ProbeFailure, SodaObservation
from checks.planned import PlannedCheck
from checks.result import CheckResult, Details, ErrorDetails, SampleInfo, Status, Threshold
from checks.source import Path

C = TypeVar("C", bound=AnyCheck)
Obs = TypeVar("Obs")


class Recorded(Protocol):
    """A past value of a check as a baseline sees it: an incident or not."""

    @property
    def incident(self) -> bool: ...


R = TypeVar("R", bound=Recorded)


@dataclass(frozen=True)
class Judge(Generic[Obs]):
    """How a kind evaluates one type of observation it accepts."""

    accepts: type[Obs]
    evaluate: Callable[[PlannedCheck, Obs, datetime], CheckResult]

    def __call__(
        self, planned: PlannedCheck, observation: object, at: datetime
    ) -> CheckResult | None:
        """The result, or None when the observation is not of the accepted type."""
        if isinstance(observation, self.accepts):
            return self.evaluate(planned, observation, at)
        return None


@dataclass(frozen=True)
class Reading:
    """One series of an exported gauge: where its value is read, and its fixed label values."""

    key: str = "value"  # "value": the result's value; otherwise a key of the result's details
    count: bool = False  # the value is the length of a list (columns added, say), not a number
    fixed: tuple[str, ...] = ()  # values of the gauge's labels after the result's own


# Labels a gauge takes from the result itself (`model`: the model a model's result is about);
# its `from_details` labels are strings of the result's details, and its other labels a reading's
# fixed values, in order. A result whose own label is unset (no feature) is not exported.
RESULT_LABELS = frozenset({"feature_view", "feature", "store", "model"})


@dataclass(frozen=True)
class Gauge:
    """A Prometheus gauge family a kind's latest results are exported as. Data only: the
    monitor's metrics module builds the family (`checks` never imports prometheus_client)."""

    name: str
    help: str
    labels: tuple[str, ...]
    readings: tuple[Reading, ...] = (Reading(),)
    from_details: frozenset[str] = frozenset()  # labels read from the details (`over`)


# How a kind's planned checks are measured: from the observation of their target store (the one
# aggregate query offline, the one sample online, or what `monitor.runs.analytics` measures for
# them), from a contract verified apart (Soda), or from this run's other results and the
# history (anomaly).
MeasuredBy = Literal["store", "contract", "results"]


def no_metrics(planned: PlannedCheck) -> frozenset[OfflineMetric]:  # noqa: ARG001 - the signature of Kind.metrics
    """A kind that needs no offline aggregate."""
    return frozenset()


@dataclass(frozen=True)
class Features(Generic[C]):
    """How a check of a kind measured per feature is planned: one planned check for each
    feature `of` it and the view gives, in order. `expanded` says when those features are not
    the check's own choice (it named none), so that a named check's ids end with the feature."""

    of: Callable[[C, FeatureView], tuple[str | None, ...]]
    expanded: Callable[[C], bool]


@dataclass(frozen=True)
class Kind(Generic[C]):
    """One check kind: the check model it judges, where it measures, what offline aggregates
    it needs, its threshold, its evaluation of each observation it accepts, its details type
    and how its results are exported. Each module of `checks.kinds` declares one, as `KIND`."""

    name: str
    model: type[C]
    # The stores it can measure when a check names none, preferred first (or a function of the
    # check); a check's own `target` always wins.
    targets: tuple[Target, ...] | Callable[[C], tuple[Target, ...]]
    threshold: Callable[[C], Threshold]
    judges: tuple[Judge[Any], ...]
    details: type[Details]
    metrics: Callable[[PlannedCheck], frozenset[OfflineMetric]] = no_metrics
    exported: tuple[Gauge, ...] = ()
    measured_by: MeasuredBy = "store"
    compares: bool = False  # judged only from an observation of two things, made for it
    reads_undeclared: bool = False  # online, it needs the stored fields nothing declares
    # What it needs of the view's offline source whatever its target (None: nothing).
    offline_need: Callable[[C], str | None] | None = None
    # The features it plans one check for each of (None: one check, on no feature).
    per_feature: Features[C] | None = None
    # The id of an unnamed check after the view's name (None: `<kind>[.<feature>]@<target>`).
    id_part: Callable[[C, FeatureView], str] | None = None
    # What a check needs of its view besides a target and an offline source (declared
    # features, say), each problem at its path below the check's own (None: nothing).
    problems: Callable[[C, FeatureView, Path], list[tuple[Path, str]]] | None = None

    def narrow(self, check: AnyCheck) -> C:
        if not isinstance(check, self.model):
            raise TypeError(f"a {check.kind} check is not a {self.name} check")
        return check

    def targets_of(self, check: AnyCheck) -> tuple[Target, ...]:
        """The stores `check` can measure, the one it prefers first (its own `target` alone)."""
        if check.target is not None:
            return (check.target,)
        return self.targets(self.narrow(check)) if callable(self.targets) else self.targets

    def offline_need_of(self, check: AnyCheck) -> str | None:
        """What `check` reads from the view's offline source besides its target, or None."""
        return None if self.offline_need is None else self.offline_need(self.narrow(check))

    def features_of(self, check: AnyCheck, view: FeatureView) -> tuple[str | None, ...]:
        """The features `check` is planned on in `view`, one planned check each, in order."""
        if self.per_feature is None:
            return (None,)
        return self.per_feature.of(self.narrow(check), view)

    def id_of(self, check: AnyCheck, view: FeatureView, target: Target, feature: str | None) -> str:
        """`user_stats.null_rate.rolling_7d_revenue@online`, or the check's own `name` (with
        `.<feature>` when the check stands for one planned check per feature it did not name)."""
        if check.name:
            per_feature = self.per_feature
            if feature and per_feature is not None and per_feature.expanded(self.narrow(check)):
                return f"{check.name}.{feature}"
            return check.name
        if self.id_part is not None:
            return f"{view.name}.{self.id_part(self.narrow(check), view)}"
        middle = f".{feature}" if feature else ""
        return f"{view.name}.{self.name}{middle}@{target}"

    def problems_of(self, check: AnyCheck, view: FeatureView, path: Path) -> list[tuple[Path, str]]:
        """What `check`, at `path` in its check file, needs of `view` and does not find."""
        return [] if self.problems is None else self.problems(self.narrow(check), view, path)

    def threshold_of(self, check: AnyCheck) -> Threshold:
        return self.threshold(self.narrow(check))

    def evaluate(self, planned: PlannedCheck, observation: object, at: datetime) -> CheckResult:
        """The first judge that accepts the observation; a probe failure, or an observation no
        judge accepts, is an `error` result saying why."""
        for judge in self.judges:
            result = judge(planned, observation, at)
            if result is not None:
                return result
        return error(planned, self.threshold_of(planned.check), self._refusal(observation))

    def _refusal(self, observation: object) -> str:
        if isinstance(observation, ProbeFailure):
            return observation.reason
        if isinstance(observation, SodaObservation):
            return f"{self.name} is not measured by Soda"
        if self.compares:
            return f"{self.name} was not given what it compares"
        where = "online" if isinstance(observation, OnlineObservation) else "offline"
        return f"{self.name} cannot be measured {where}"


def undeclared(
    view: FeatureView, path: Path, field: str, names: str | tuple[str, ...] | None
) -> list[tuple[Path, str]]:
    """A problem at `path`.`field` (or its item) for each of the check's feature `names` that
    the view does not declare; None names no feature."""
    if isinstance(names, str):
        located: list[tuple[Path, str]] = [((field,), names)]
    else:
        located = [((field, i), name) for i, name in enumerate(names or ())]
    declared = sorted(view.features)
    return [
        ((*path, *where), f"expected a declared feature {declared}, found {name!r}")
        for where, name in located
        if name not in view.features
    ]


def build(
    planned: PlannedCheck,
    threshold: Threshold,
    value: float | None,
    details: Details,
    sample_size: int | None = None,
    status: Status | None = None,
) -> CheckResult:
    """A result whose status follows from `value` and `threshold` unless given."""
    if status is None:
        status = Status.ERROR if value is None else threshold.status(value)
    return CheckResult(
        check=planned.id,
        kind=planned.kind,
        feature_view=planned.view.name,
        feature=planned.feature,
        store=planned.store,
        target=planned.target,
        status=status,
        severity=planned.check.severity,
        value=value,
        threshold=threshold,
        sample_size=sample_size,
        details=details,
        labels=MappingProxyType(planned.labels),
    )


def error(planned: PlannedCheck, threshold: Threshold, reason: str) -> CheckResult:
    """The probe could not measure this check."""
    return build(planned, threshold, None, ErrorDetails(reason), status=Status.ERROR)


def sample_info(observation: OnlineObservation) -> SampleInfo:
    return SampleInfo(
        population=observation.population,
        asked=observation.asked,
        found=observation.found,
        decode_errors=observation.decode_errors,
    )


def narrow(planned: PlannedCheck, kind: type[C]) -> C:
    """The planned check's model, as the kind module that evaluates it expects."""
    if not isinstance(planned.check, kind):
        raise TypeError(f"{planned.id} is a {planned.kind} check, not {kind.__name__}")
    return planned.check


def baseline(points: Iterable[R], size: int) -> tuple[list[R], int]:
    """The newest `size` of `points` (newest first) that are not incidents, and how many
    incidents were passed over while filling them. A baseline that learnt the runs in which
    the check failed would take the next outage for normal."""
    kept: list[R] = []
    incidents = 0
    for point in points:
        if len(kept) == size:
            break
        if point.incident:
            incidents += 1
        else:
            kept.append(point)
    return kept, incidents
