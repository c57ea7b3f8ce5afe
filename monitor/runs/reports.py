"""The HTML report of a run, with each check's history drawn from the state database.

Two ways to a page:

- `write_run_report(run, target, state)`: `featmon check` writes the report of its one run to a
  file (a report that cannot be written is logged, never fatal: the exit code stands);
- `render_recorded(state, run_id)`: the daemon writes no file per run; the sidecar renders
  `/reports/{run_id}` from the recorded run when it is asked for. A run's page shows the
  history of its checks up to that run, so it reads the same whenever it is rendered.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from alerts.report import ChartPoint, render_report, write_report, write_report_file
from checks.result import RunResult
from monitor.state import StateError, StateStore

log = logging.getLogger(__name__)

HISTORY_POINTS = 30  # values in a check's chart
INDEX_HREF = "./"  # run pages sit beside the index the sidecar serves at /reports/


def report_history(
    state: StateStore, run: RunResult, points: int = HISTORY_POINTS
) -> Mapping[str, Sequence[ChartPoint]]:
    """The last `points` values of each check of `run` up to the run itself (newest first),
    for its report's charts. One query per check; a state outage gives no charts (logged),
    never an error."""
    out: dict[str, Sequence[ChartPoint]] = {}
    try:
        for result in run.results:
            out[result.check] = tuple(
                ChartPoint(p.run_id, p.scheduled_at, p.value, p.status)
                for p in state.history(result.check, points, until=run.scheduled_at)
            )
    except StateError as exc:
        log.error("the report of run %s has no history charts: %s", run.run_id, exc)
        return {}
    return out


def render_recorded(state: StateStore, run_id: str) -> str | None:
    """The report page of the recorded run `run_id`, linking to the reports index; None when
    no such run was recorded. Raises `StateError` when the run cannot be read."""
    run = state.recorded_run(run_id)
    if run is None:
        return None
    return render_report(run, history=report_history(state, run), index_href=INDEX_HREF)


def write_run_report(run: RunResult, target: Path, state: StateStore | None = None) -> Path | None:
    """Write the report of `run` to `target`: a `.html` file, or a directory (then
    `<run_id>.html` and `latest.html`). Returns the path, or None when it could not be written."""
    history = report_history(state, run) if state is not None else None
    try:
        if target.suffix == ".html":
            return write_report_file(run, target, history=history)
        return write_report(run, target, history=history, index_href=INDEX_HREF)
    except OSError as exc:
        log.error("cannot write the HTML report to %s: %s", target, exc.strerror or exc)
        return None
