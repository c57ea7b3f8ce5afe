"""The HTML reports: `/reports/` (an index of recent runs and the views' and models' status) and
`/reports/{run_id}` (the report of that run, `latest` the newest), both rendered from the state
database when asked for: the daemon writes no report file per run (`monitor.runs.reports`).

A run id is checked against the report-name pattern (letters, digits, `.`, `_` and `-`, starting
with a letter or digit) before the database is asked; nothing is read from the file system.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from alerts.report import LATEST, IndexRun, IndexView, is_report_name, render_index
from checks.result import Status, worst
from monitor.http.api import read_state
from monitor.metrics import StateSource
from monitor.runs.reports import render_recorded
from monitor.state import StateStore, StoredResult, StoredRun

log = logging.getLogger(__name__)

INDEX_RUNS = 50  # runs listed by default
LATEST_NAME = LATEST.removesuffix(".html")
HTML_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def index_views(latest: Iterable[StoredResult]) -> tuple[IndexView, ...]:
    """The feature views' latest status, by name."""
    return _index(latest, lambda result: None if result.model is not None else result.feature_view)


def index_models(latest: Iterable[StoredResult]) -> tuple[IndexView, ...]:
    """The models' latest status, by name."""
    return _index(latest, lambda result: result.model)


def _index(
    latest: Iterable[StoredResult], name_of: Callable[[StoredResult], str | None]
) -> tuple[IndexView, ...]:
    """One row per name the results have (`name_of` None: not this table's): its worst status
    and its last run."""
    grouped: dict[str, list[StoredResult]] = {}
    for result in latest:
        name = name_of(result)
        if name is not None:
            grouped.setdefault(name, []).append(result)
    views = []
    for name in sorted(grouped):
        members = grouped[name]
        newest = max(members, key=lambda r: (r.scheduled_at, r.run_id))
        counts = {s.value: 0 for s in Status}
        for result in members:
            counts[result.status.value] += 1
        views.append(
            IndexView(
                name=name,
                status=worst([r.status for r in members]),
                last_run=newest.scheduled_at,
                last_run_id=newest.run_id,
                counts=counts,
                href=newest.run_id,
            )
        )
    return tuple(views)


def index_runs(runs: Iterable[StoredRun]) -> tuple[IndexRun, ...]:
    return tuple(
        IndexRun(
            run_id=run.run_id,
            feature_view=run.feature_view,
            scheduled_at=run.scheduled_at,
            duration_seconds=run.duration_seconds,
            status=run.status,
            counts={
                "pass": run.counts.passed,
                "warn": run.counts.warned,
                "fail": run.counts.failed,
                "error": run.counts.errors,
            },
            href=run.run_id,  # relative to /reports/
            model=run.model,
        )
        for run in runs
    )


def error_page(status_code: int, title: str, message: str) -> HTMLResponse:
    """A small error page (the message is escaped: it may quote the request)."""
    body = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        f"</title></head><body><h1>{escape(title)}</h1><p>{escape(message)}</p>"
        '<p><a href="./">All reports</a></p></body></html>'
    )
    return HTMLResponse(body, status_code=status_code, headers=HTML_HEADERS)


class Reports:
    """The report pages over the state database of the moment."""

    def __init__(self, source: StateSource) -> None:
        self._source = source

    def index(self, request: Request) -> Response:
        found = read_state(
            self._source,
            lambda state: (state.runs(limit=INDEX_RUNS), state.latest_by_check()),
            f"GET {request.url.path}",
        )
        if found is None:
            return error_page(503, "Unavailable", "The state database is unavailable.")
        runs, latest = found
        page = render_index(index_runs(runs), index_views(latest), index_models(latest))
        return HTMLResponse(page, headers=HTML_HEADERS)

    def run(self, request: Request) -> Response:
        run_id = str(request.path_params["run_id"]).removesuffix(".html")
        if not is_report_name(run_id):
            return error_page(
                400,
                "Bad run id",
                "Expected a run id of letters, digits, '.', '_' or '-' starting with a letter "
                "or digit.",
            )
        found = read_state(
            self._source, lambda state: (_render(state, run_id),), f"GET {request.url.path}"
        )
        if found is None:
            return error_page(503, "Unavailable", "The state database is unavailable.")
        (page,) = found
        if page is None:
            return error_page(404, "No report", f"No run {run_id} was recorded.")
        return HTMLResponse(page, headers=HTML_HEADERS)


def _render(state: StateStore, run_id: str) -> str | None:
    """The page of `run_id` (`latest`: the newest recorded run); None when there is none."""
    if run_id == LATEST_NAME:
        newest = state.runs(limit=1)
        if not newest:
            return None
        run_id = newest[0].run_id
    return render_recorded(state, run_id)
