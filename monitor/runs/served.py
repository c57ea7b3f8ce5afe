"""Probe one model at one scheduled time: see its requests, judge every check of the model.

A serving log is read in one aggregate query over the window before the scheduled time, run by
the engine that holds it (`OfflineStore.measure_serving_log`); without one, a sample of recent
requests is read from each view's online store now (`monitor.runs.requests`). Either way one
`ModelObservation` feeds every check; a failure to see the requests is an `error` result for
each, never a pass.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from checks.observation import ModelObservation, ProbeFailure
from checks.result import CheckResult, worst
from checks.served_judge import error, judge
from monitor.loader import LoadedModel
from monitor.runs import requests
from monitor.runs.probe import Stores, guard

log = logging.getLogger(__name__)


def probe_model(model: LoadedModel, stores: Stores, scheduled_at: datetime) -> list[CheckResult]:
    """Every planned check of `model`, judged from one observation of its requests."""
    started = time.monotonic()
    observation = observe(model, stores, scheduled_at)
    results = []
    for planned in model.planned:
        try:
            results.append(judge(planned, observation))
        except Exception as exc:  # the per-run boundary: one bad value must not lose the run
            log.exception("judging %s failed", planned.id)
            reason = stores.secrets.scrub(f"internal error: {type(exc).__name__}: {exc}")
            results.append(error(planned, reason))
    log.info(
        "probed model %s (%s): %d checks, worst %s, %.0f ms",
        model.name,
        model.served.model.source,
        len(results),
        worst([r.status for r in results]).value,
        (time.monotonic() - started) * 1000,
    )
    return results


def observe(
    model: LoadedModel, stores: Stores, scheduled_at: datetime
) -> ModelObservation | ProbeFailure:
    """The model's requests, from its serving log or a sample probed now."""
    source = model.served.model.serving_log
    if source is None:
        return requests.observe(model, stores, scheduled_at)
    store = stores.offline[source.store]
    since = scheduled_at - source.window

    def measure() -> ModelObservation:
        return store.measure_serving_log(model.served, source, since, scheduled_at)

    return guard(store.name, model.key, measure, stores)
