"""One run of every check: probe the views on a bounded pool, evaluate, collect a RunResult
(`run_once`, for `featmon check`); or one view's run at its scheduled time (`run_view`, for the
daemon)."""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from checks.evaluate import error_result
from checks.result import CheckResult, RunResult
from monitor.app import App
from monitor.loader import LoadedView
from monitor.observer import RunObserver
from monitor.probe import probe_view

log = logging.getLogger(__name__)


def new_run_id(scheduled_at: datetime) -> str:
    """Sortable and unique: `20261126T061500Z-3f9c2a1b`."""
    return f"{scheduled_at.astimezone(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def run_once(
    app: App, scheduled_at: datetime, workers: int = 4, run_id: str | None = None
) -> RunResult:
    """Probe every view once against `scheduled_at` (timezone-aware) and return all results,
    in the order the views and checks were declared."""
    if scheduled_at.tzinfo is None:
        raise ValueError("scheduled_at must be timezone-aware")
    started_at = datetime.now(UTC)
    clock = time.monotonic()
    views = app.loaded.views
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(views)))) as pool:
        futures = [
            pool.submit(probe_view, v.view, v.planned, app.stores, scheduled_at) for v in views
        ]
        results: list[CheckResult] = [r for f in futures for r in f.result()]
    run = RunResult(
        run_id=run_id or new_run_id(scheduled_at),
        scheduled_at=scheduled_at,
        started_at=started_at,
        finished_at=datetime.now(UTC),
        results=tuple(results),
    )
    counts = run.counts()
    log.info(
        "run %s: %d views, %d checks (%d pass, %d warn, %d fail, %d error) in %.0f ms",
        run.run_id,
        len(views),
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
    """Probe one view; a failure outside the probe's own guards becomes `error` results.
    Returns the run and the CPU seconds the probe took on this thread: the store queries, the
    decoding of their replies and the evaluation (the run log line says it, so that what the
    daemon costs beyond its probes can be told apart; bench/daemon_load.py reads it)."""
    started_at = datetime.now(UTC)
    cpu = time.thread_time()
    try:
        stores = dataclasses.replace(app.stores, on_probe=observer.probe_finished)
        results: list[CheckResult] = probe_view(view.view, view.planned, stores, scheduled_at)
    except Exception as exc:  # the per-run boundary: the run is recorded as errors
        log.exception("probe of view %s failed", view.view.name)
        reason = app.stores.secrets.scrub(f"internal error: {type(exc).__name__}: {exc}")
        results = [error_result(planned, reason) for planned in view.planned]
    cpu = time.thread_time() - cpu
    run = RunResult(
        run_id=new_run_id(scheduled_at),
        scheduled_at=scheduled_at,
        started_at=started_at,
        finished_at=datetime.now(UTC),
        results=tuple(results),
    )
    return run, cpu
