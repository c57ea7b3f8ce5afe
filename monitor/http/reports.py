"""The HTML reports: `/reports/` (an index of recent runs and the views' status, from the
state database) and `/reports/{run_id}` (the page the daemon wrote for that run).

Run ids are checked against the report-file pattern before any path is built (a name of
letters, digits, `.`, `_` and `-` that starts with a letter or digit: never a path, never
`..`), and the file must resolve inside the reports directory.

`monitor.reports.report_history(state, run)` gives what `write_report(..., history=...)` draws.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from html import escape
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from alerts.report import (
    LATEST,
    IndexRun,
    IndexView,
    is_report_name,
    render_index,
)
from checks.result import Status, worst
from monitor.http.api import read_state
from monitor.metrics import StateSource
from monitor.state import StoredResult, StoredRun

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


def report_file(directory: Path, run_id: str) -> Path | None:
    """The report file of `run_id` inside `directory`, or None for a name that is not a report
    name or a file that does not exist. `latest` is the newest report."""
    if not is_report_name(run_id):
        return None
    name = LATEST if run_id == LATEST_NAME else f"{run_id}.html"
    root = directory.resolve()
    path = (root / name).resolve()
    if path.parent != root or not path.is_file():
        return None
    return path


def index_views(latest: Iterable[StoredResult], directory: Path) -> tuple[IndexView, ...]:
    grouped: dict[str, list[StoredResult]] = {}
    for result in latest:
        grouped.setdefault(result.feature_view, []).append(result)
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
                href=_href(directory, newest.run_id),
            )
        )
    return tuple(views)


def index_runs(runs: Iterable[StoredRun], directory: Path) -> tuple[IndexRun, ...]:
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
            href=_href(directory, run.run_id),
        )
        for run in runs
    )


def _href(directory: Path, run_id: str) -> str | None:
    """A link relative to /reports/, when the run's report file exists."""
    return run_id if report_file(directory, run_id) is not None else None


def _page(status_code: int, title: str, message: str) -> HTMLResponse:
    """A small error page (the message is escaped: it may quote the request)."""
    body = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        f"</title></head><body><h1>{escape(title)}</h1><p>{escape(message)}</p>"
        '<p><a href="./">All reports</a></p></body></html>'
    )
    return HTMLResponse(body, status_code=status_code, headers=HTML_HEADERS)


class Reports:
    """The report pages over the state database of the moment and the reports `directory`."""

    def __init__(self, source: StateSource, directory: Path) -> None:
        self._source = source
        self._directory = directory

    def index(self, request: Request) -> Response:
        found = read_state(
            self._source,
            lambda state: (state.runs(limit=INDEX_RUNS), state.latest_by_check()),
            f"GET {request.url.path}",
        )
        if found is None:
            return _page(503, "Unavailable", "The state database is unavailable.")
        runs, latest = found
        page = render_index(index_runs(runs, self._directory), index_views(latest, self._directory))
        return HTMLResponse(page, headers=HTML_HEADERS)

    def run(self, request: Request) -> Response:
        run_id = str(request.path_params["run_id"]).removesuffix(".html")
        if not is_report_name(run_id):
            return _page(
                400,
                "Bad run id",
                "Expected a run id of letters, digits, '.', '_' or '-' starting with a letter "
                "or digit.",
            )
        path = report_file(self._directory, run_id)
        if path is None:
            return _page(404, "No report", f"No report was written for run {run_id}.")
        return Response(path.read_bytes(), media_type="text/html", headers=HTML_HEADERS)
