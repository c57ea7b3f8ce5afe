"""Judge a model's checks from what its requests were served: pure, no I/O, no clock.

One `ModelObservation` (a serving log's window, or a sample of requests probed now) feeds every
check of the model. No requests is an `error`, never a pass: nothing was measured.
"""

from __future__ import annotations

from types import MappingProxyType

from checks.observation import Ages, ModelObservation, ProbeFailure
from checks.result import (
    CheckResult,
    Details,
    ErrorDetails,
    Interval,
    ModelCoverageDetails,
    ModelFreshnessDetails,
    ModelFreshnessRiskDetails,
    ModelNullRateDetails,
    ServedFrom,
    Status,
    Threshold,
    ViewCoverage,
)
from checks.served import (
    ModelCoverageCheck,
    ModelFreshnessCheck,
    ModelFreshnessRiskCheck,
    PlannedModelCheck,
)
from checks.stats import wilson


def threshold(planned: PlannedModelCheck) -> Threshold:
    check = planned.check
    if isinstance(check, ModelCoverageCheck):
        return Threshold("min", check.min, check.warn, "ratio")
    if isinstance(check, ModelFreshnessCheck):
        seconds = [None if t is None else t.total_seconds() for t in (check.max, check.warn)]
        return Threshold("max", seconds[0], seconds[1], "seconds")
    if isinstance(check, ModelFreshnessRiskCheck):
        max_age = planned.view.max_age.total_seconds() if planned.view is not None else None
        fail, warn = (max_age, None) if check.fail else (None, max_age)
        return Threshold("max", fail, warn, "seconds")
    return Threshold("max", check.max, check.warn, "ratio")


def judge(planned: PlannedModelCheck, observation: ModelObservation | ProbeFailure) -> CheckResult:
    """One model check's result; a probe failure, or a window without requests, is `error`."""
    if isinstance(observation, ProbeFailure):  # named by the store that failed
        return error(planned, observation.reason, observation.store or None)
    if observation.requests == 0:
        return error(planned, _no_requests(observation))
    check = planned.check
    if isinstance(check, ModelCoverageCheck):
        return _coverage(planned, observation)
    if isinstance(check, ModelFreshnessCheck):
        return _freshness(planned, check, observation)
    if isinstance(check, ModelFreshnessRiskCheck):
        return _freshness_risk(planned, observation)
    return _null_rate(planned, observation)


def error(planned: PlannedModelCheck, reason: str, store: str | None = None) -> CheckResult:
    """An `error` result; `store`: the store that could not be read, when it is not the
    model's own source's (a view's online store read for a request sample)."""
    return _result(planned, None, ErrorDetails(reason), None, Status.ERROR, store)


def _no_requests(observation: ModelObservation) -> str:
    if observation.source == "serving_log":
        since = "" if observation.since is None else f" since {observation.since:%Y-%m-%d %H:%M}Z"
        return f"no requests in the serving log{since}: nothing was measured"
    return "no recent requests to probe: the request sample is empty"


def _coverage(planned: PlannedModelCheck, observation: ModelObservation) -> CheckResult:
    requests = observation.requests
    views = tuple(
        ViewCoverage(
            view=view.name,
            uncovered=observation.views[view.name].uncovered,
            only=observation.views[view.name].only,
            reasons=MappingProxyType(dict(observation.views[view.name].reasons)),
            max_age_seconds=view.max_age.total_seconds(),
            p99=observation.views[view.name].ages.p99,
        )
        for view in planned.served.views
        if view.name in observation.views
    )
    features = {
        reference: MappingProxyType(
            {reason: n for reason, n in vars(misses).items() if n}  # reasons with any requests
        )
        for reference, misses in observation.features.items()
    }
    details = ModelCoverageDetails(
        covered=observation.covered,
        requests=requests,
        interval=_interval(observation, observation.covered),
        views=tuple(sorted(views, key=lambda v: (-v.uncovered, v.view))),
        features=MappingProxyType({k: v for k, v in features.items() if v}),
        served_from=_served_from(observation),
        status_disagreements=observation.status_disagreements,
    )
    return _result(planned, observation.covered / requests, details, requests)


def _freshness(
    planned: PlannedModelCheck, check: ModelFreshnessCheck, observation: ModelObservation
) -> CheckResult:
    ages = observation.value_ages if check.over == "values" else observation.request_ages
    future = sum(misses.future for misses in observation.features.values())
    max_ages = {view.name: view.max_age.total_seconds() for view in planned.served.views}
    details = ModelFreshnessDetails(
        over=check.over,
        ages=ages.count,
        p50=ages.p50,
        p90=ages.p90,
        p99=ages.p99,
        max=ages.max,
        future=future,
        views=MappingProxyType(
            {
                name: MappingProxyType(
                    {"p50": view.ages.p50, "p99": view.ages.p99, "max_age": max_ages.get(name)}
                )
                for name, view in observation.views.items()
            }
        ),
        served_from=_served_from(observation),
    )
    value = _quantile(ages, check.quantile)
    if value is None:
        reason = "no served value had a time: every value was absent"
        return _result(planned, None, ErrorDetails(reason), observation.requests, Status.ERROR)
    status = Status.FAIL if future else None  # a value from the future is never fresh
    return _result(planned, value, details, observation.requests, status)


def _freshness_risk(planned: PlannedModelCheck, observation: ModelObservation) -> CheckResult:
    view = planned.view
    misses = None if view is None else observation.views.get(view.name)
    if view is None or view.materialized_every is None or misses is None:
        return error(planned, "the view was not measured")
    if misses.ages.p50 is None:
        return error(planned, f"no value of {view.name} had a time: every value was absent")
    every = view.materialized_every.total_seconds()
    predicted = misses.ages.p50 + every / 2
    details = ModelFreshnessRiskDetails(
        view=view.name,
        materialized_every_seconds=every,
        p50=misses.ages.p50,
        observed_max=misses.ages.max,
        predicted=predicted,
        max_age_seconds=view.max_age.total_seconds(),
        served_from=_served_from(observation),
    )
    return _result(planned, predicted, details, misses.ages.count)


def _null_rate(planned: PlannedModelCheck, observation: ModelObservation) -> CheckResult:
    reference = planned.feature or ""
    misses = observation.features.get(reference)
    if misses is None:
        return error(planned, f"{reference} was not measured")
    details = ModelNullRateDetails(
        absent=misses.absent,
        null=misses.null,
        requests=observation.requests,
        interval=_interval(observation, misses.unserved),
        served_from=_served_from(observation),
    )
    return _result(planned, misses.unserved / observation.requests, details, observation.requests)


def _quantile(ages: Ages, quantile: str) -> float | None:
    value: float | None = getattr(ages, quantile)
    return value


def _interval(observation: ModelObservation, successes: int) -> Interval | None:
    """A sample's 95% interval; None over a serving log (every request, exact)."""
    if observation.source == "serving_log":
        return None
    return wilson(successes, observation.requests)


def _served_from(observation: ModelObservation) -> ServedFrom:
    return ServedFrom(
        source=observation.source,
        since=observation.since,
        until=observation.until,
        asked=observation.asked,
        population=observation.population,
    )


def _result(
    planned: PlannedModelCheck,
    value: float | None,
    details: Details,
    sample_size: int | None,
    status: Status | None = None,
    store: str | None = None,
) -> CheckResult:
    rule = threshold(planned)
    if status is None:
        status = Status.ERROR if value is None else rule.status(value)
    model = planned.served.model
    source = model.serving_log or model.requests
    return CheckResult(
        check=planned.id,
        kind=planned.kind,
        feature_view=None,
        feature=planned.feature,
        store=store or (source.store if source is not None else None) or "",
        target=model.source,
        status=status,
        severity=planned.check.severity,
        value=value,
        threshold=rule,
        sample_size=sample_size,
        details=details,
        labels=MappingProxyType(planned.labels),
        model=model.name,
    )
