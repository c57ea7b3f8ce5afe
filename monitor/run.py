"""One run of every check: probe the views on a bounded pool, evaluate, collect a RunResult."""

from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from checks.result import CheckResult, RunResult
from monitor.app import App
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
