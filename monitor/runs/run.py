"""Runs. A run is one execution of one feature view's checks (or one model's) at one scheduled
time: probe, evaluate, a `RunResult` with its run id (`run_view` and `run_model`, what the
daemon schedules, claims, records and alerts on). `featmon check` runs every view and model once
the same way and sums them in one report (`run_once`). Both build the per-view part with
`view_results`, and the per-model part with `model_results`."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime

from checks.evaluate import error_result
from checks.result import CheckResult, RunResult
from checks.served_judge import error as model_error
from monitor.app import App
from monitor.daemon.observer import RunObserver
from monitor.loader import LoadedModel, LoadedView
from monitor.runs.probe import Stores, probe_view
from monitor.runs.served import probe_model

log = logging.getLogger(__name__)


def new_run_id(scheduled_at: datetime) -> str:
    """Sortable and unique: `20261126T061500Z-3f9c2a1b`."""
    return f"{scheduled_at.astimezone(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def run_once(
    app: App, scheduled_at: datetime, workers: int = 4, run_id: str | None = None
) -> RunResult:
    """`featmon check`: run every view once at `scheduled_at` (timezone-aware), each as the
    daemon runs it (`view_results`), on a bounded pool, and sum them in one report: all
    results in the order the views and checks were declared, under one run id."""
    if scheduled_at.tzinfo is None:
        raise ValueError("scheduled_at must be timezone-aware")
    started_at = datetime.now(UTC)
    clock = time.monotonic()
    views, models = app.loaded.views, app.loaded.models
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(views) + len(models)))) as pool:
        futures = [pool.submit(view_results, app, v, scheduled_at) for v in views]
        futures += [pool.submit(model_results, app, m, scheduled_at) for m in models]
        results: list[CheckResult] = [r for f in futures for r in f.result()[0]]
    run = RunResult(
        run_id=run_id or new_run_id(scheduled_at),
        scheduled_at=scheduled_at,
        started_at=started_at,
        finished_at=datetime.now(UTC),
        results=tuple(results),
    )
    counts = run.counts()
    log.info(
        "run %s: %d views, %d models, %d checks (%d pass, %d warn, %d fail, %d error) in %.0f ms",
        run.run_id,
        len(views),
        len(models),
        len(results),
        counts["pass"],
        counts["warn"],
        counts["fail"],
        counts["error"],
        (time.monotonic() - clock) * 1000,
    )
    return run


def run_view(
    app: App, view: LoadedView, scheduled_at: datetime, observer: RunObserver
) -> tuple[RunResult, float]:
    """The daemon's run of one view at `scheduled_at`: its `view_results` as a `RunResult` with
    a run id of its own, and the CPU seconds the probe took (the run log line says it, so that
    what the daemon costs beyond its probes can be told apart; bench/daemon_load.py reads
    it)."""
    return _own_run(
        scheduled_at, lambda: view_results(app, view, scheduled_at, observer.probe_finished)
    )


def run_model(
    app: App, model: LoadedModel, scheduled_at: datetime, observer: RunObserver
) -> tuple[RunResult, float]:
    """The daemon's run of one model at `scheduled_at`, as `run_view` is of a view: its
    `model_results` as a `RunResult` with a run id of its own, and the CPU seconds it took."""
    return _own_run(
        scheduled_at, lambda: model_results(app, model, scheduled_at, observer.probe_finished)
    )


def _own_run(
    scheduled_at: datetime, measure: Callable[[], tuple[list[CheckResult], float]]
) -> tuple[RunResult, float]:
    """`measure()`'s results as a run of their own, framed by the times it started and ended."""
    started_at = datetime.now(UTC)
    results, cpu = measure()
    run = RunResult(
        run_id=new_run_id(scheduled_at),
        scheduled_at=scheduled_at,
        started_at=started_at,
        finished_at=datetime.now(UTC),
        results=tuple(results),
    )
    return run, cpu


def view_results(
    app: App,
    view: LoadedView,
    scheduled_at: datetime,
    on_probe: Callable[[str, str, float, bool], None] | None = None,
) -> tuple[list[CheckResult], float]:
    """Probe one view and evaluate its checks: the per-view part of every run, in the daemon
    and in `featmon check`. A failure outside the probe's own guards becomes `error` results.
    Returns the results, in the order the checks were declared, and the CPU seconds the probe
    took on this thread (the store queries, the decoding of their replies and the
    evaluation). `on_probe` replaces the stores' probe callback (the daemon's observer)."""
    return _guarded(
        app,
        f"view {view.view.name}",
        lambda stores: probe_view(view.view, view.planned, stores, scheduled_at),
        lambda reason: [error_result(planned, reason) for planned in view.planned],
        on_probe,
    )


def model_results(
    app: App,
    model: LoadedModel,
    scheduled_at: datetime,
    on_probe: Callable[[str, str, float, bool], None] | None = None,
) -> tuple[list[CheckResult], float]:
    """Probe one model and judge its checks (as `view_results` does for a view): the results
    in the order the checks were declared, and the CPU seconds it took on this thread."""
    return _guarded(
        app,
        f"model {model.name}",
        lambda stores: probe_model(model, stores, scheduled_at),
        lambda reason: [model_error(planned, reason) for planned in model.planned],
        on_probe,
    )


def _guarded(
    app: App,
    what: str,
    probe: Callable[[Stores], list[CheckResult]],
    errors: Callable[[str], list[CheckResult]],
    on_probe: Callable[[str, str, float, bool], None] | None,
) -> tuple[list[CheckResult], float]:
    """`probe`'s results and the CPU seconds it took on this thread; a failure outside the
    probe's own guards (the per-view or per-model boundary) becomes `errors` of its reason,
    scrubbed of every secret."""
    cpu = time.thread_time()
    try:
        stores = app.stores if on_probe is None else replace(app.stores, on_probe=on_probe)
        results = probe(stores)
    except Exception as exc:  # the boundary: the checks are recorded as errors
        log.exception("probe of %s failed", what)
        results = errors(app.stores.secrets.scrub(f"internal error: {type(exc).__name__}: {exc}"))
    return results, time.thread_time() - cpu
