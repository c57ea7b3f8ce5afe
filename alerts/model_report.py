"""What a model's results say together, for its section of the HTML report (`alerts.report`).

A model's checks are judged from one observation of its requests, so their details add up to
one picture: where the requests were seen, the coverage and the view that costs the most of it
(the requests it leaves uncovered, and those it alone leaves uncovered: what fixing it gives
back), each view's freshness at the request's time against its max age, and the features served
worst. Pure: results in, values out; the layout lives in `templates/model.html.j2`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType

from checks.result import (
    CheckResult,
    ModelCoverageDetails,
    ModelFreshnessDetails,
    ModelFreshnessRiskDetails,
    ModelNullRateDetails,
    ServedFrom,
    Status,
    ViewCoverage,
)

FEATURES_SHOWN = 10  # the worst features listed; the others are counted
# The details of a model's checks whose sample size is the requests seen.
COUNTED = (ModelCoverageDetails, ModelFreshnessDetails, ModelNullRateDetails)


@dataclass(frozen=True)
class ModelView:
    """One view of a model: the requests it left uncovered and those it alone left uncovered
    (None without a coverage check), why, the age of its values at the request's time against
    its max age (None without a freshness check), and the worst age predicted for them (with a
    freshness_risk check and the view's materialization interval)."""

    name: str
    uncovered: int | None
    only: int | None
    reasons: Mapping[str, int]
    max_age_seconds: float | None
    p50: float | None
    p99: float | None
    risk: CheckResult | None = None  # its freshness_risk result: the worst age predicted

    @property
    def too_old(self) -> bool:
        """Its p99 age is beyond its max age: more than 1% of its values were too old."""
        if self.p99 is None or self.max_age_seconds is None:
            return False
        return self.p99 > self.max_age_seconds


@dataclass(frozen=True)
class ModelFeature:
    """One served feature (`view:feature`): the requests not served a usable value of it, by
    reason (from the coverage check, else its null rate's absent and null), and its null-rate
    result, if the model checks it."""

    reference: str
    missing: int
    reasons: Mapping[str, int]
    null_rate: CheckResult | None


@dataclass(frozen=True)
class ModelSummary:
    """A model's results read together. `requests` and `served_from` come from the first
    result that measured anything (None when every check is in error)."""

    owner: str | None
    requests: int | None
    served_from: ServedFrom | None
    coverage: CheckResult | None
    views: tuple[ModelView, ...]  # worst first: the most uncovered requests
    predicts: bool  # a view has a freshness_risk result
    features: tuple[ModelFeature, ...]  # worst first, at most FEATURES_SHOWN
    more_features: int  # features with misses beyond those shown

    @property
    def costliest(self) -> ModelView | None:
        """The view that leaves the most requests uncovered, if any leaves one."""
        first = self.views[0] if self.views else None
        return first if first is not None and first.uncovered else None


def summarize(results: Sequence[CheckResult]) -> ModelSummary:
    """The summary of one model's results (all of one model, in the order of its checks)."""
    coverage = _first(results, ModelCoverageDetails)
    freshness = _first(results, ModelFreshnessDetails)
    requests, served_from = _seen(results)
    risks = {r.details.view: r for r in results if isinstance(r.details, ModelFreshnessRiskDetails)}
    features = _features(coverage, [r for r in results if _is(r, ModelNullRateDetails)])
    return ModelSummary(
        owner=results[0].labels.get("owner") if results else None,
        requests=requests,
        served_from=served_from,
        coverage=coverage,
        views=_views(coverage, freshness, risks),
        predicts=bool(risks),
        features=tuple(features[:FEATURES_SHOWN]),
        more_features=max(0, len(features) - FEATURES_SHOWN),
    )


def _seen(results: Iterable[CheckResult]) -> tuple[int | None, ServedFrom | None]:
    """How many requests were seen (a freshness_risk result counts ages, not requests), and
    where: from the first results that say."""
    requests: int | None = None
    served_from: ServedFrom | None = None
    for result in results:
        details = result.details
        if requests is None and isinstance(details, COUNTED):
            requests = result.sample_size
        if served_from is None and isinstance(details, (*COUNTED, ModelFreshnessRiskDetails)):
            served_from = details.served_from
    return requests, served_from


def _is(result: CheckResult, details: type[object]) -> bool:
    return isinstance(result.details, details)


def _first(results: Iterable[CheckResult], details: type[object]) -> CheckResult | None:
    return next((r for r in results if _is(r, details)), None)


def _views(
    coverage: CheckResult | None,
    freshness: CheckResult | None,
    risks: Mapping[str, CheckResult],
) -> tuple[ModelView, ...]:
    """The views of the coverage check (worst first), then any only the freshness checks
    know, in their order."""
    covered: dict[str, ViewCoverage] = {}
    if coverage is not None and isinstance(coverage.details, ModelCoverageDetails):
        covered = {v.view: v for v in coverage.details.views}
    ages: Mapping[str, Mapping[str, float | None]] = {}
    if freshness is not None and isinstance(freshness.details, ModelFreshnessDetails):
        ages = freshness.details.views
    names = list(dict.fromkeys([*covered, *ages, *risks]))
    return tuple(
        replace(_view(name, covered.get(name), ages.get(name, {})), risk=risks.get(name))
        for name in names
    )


def _view(name: str, covered: ViewCoverage | None, ages: Mapping[str, float | None]) -> ModelView:
    max_age = ages.get("max_age")
    if max_age is None and covered is not None:
        max_age = covered.max_age_seconds
    return ModelView(
        name=name,
        uncovered=None if covered is None else covered.uncovered,
        only=None if covered is None else covered.only,
        reasons=MappingProxyType({} if covered is None else dict(covered.reasons)),
        max_age_seconds=max_age,
        p50=ages.get("p50"),
        p99=ages.get("p99", None if covered is None else covered.p99),
    )


def _features(coverage: CheckResult | None, null_rates: list[CheckResult]) -> list[ModelFeature]:
    """Every feature with a miss or a null-rate result that is not a clean pass, worst first."""
    reasons: Mapping[str, Mapping[str, int]] = {}
    if coverage is not None and isinstance(coverage.details, ModelCoverageDetails):
        reasons = coverage.details.features
    checked = {r.feature: r for r in null_rates if r.feature is not None}
    rows = [
        _feature(reference, reasons.get(reference), checked.get(reference))
        for reference in dict.fromkeys([*reasons, *checked])
    ]
    shown = [row for row in rows if row.missing or _noted(row.null_rate)]
    return sorted(shown, key=_worst_first)


def _feature(
    reference: str, reasons: Mapping[str, int] | None, null_rate: CheckResult | None
) -> ModelFeature:
    if reasons is None and null_rate is not None:
        details = null_rate.details
        if isinstance(details, ModelNullRateDetails):
            reasons = {"absent": details.absent, "null": details.null}
    kept = {reason: n for reason, n in (reasons or {}).items() if n}
    return ModelFeature(reference, sum(kept.values()), MappingProxyType(kept), null_rate)


def _noted(result: CheckResult | None) -> bool:
    return result is not None and (result.status is not Status.PASS or bool(result.value))


def _worst_first(row: ModelFeature) -> tuple[int, int, float, str]:
    result = row.null_rate
    rank = 0 if result is None else result.status.rank
    return (-row.missing, -rank, -((result.value or 0.0) if result else 0.0), row.reference)
