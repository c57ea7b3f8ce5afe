"""The HTML report of one run: one self-contained page (inline CSS, no script, nothing fetched).

Everything read from a store or a check file is data. The Jinja2 environment autoescapes every
template and nothing is marked safe; the page also carries a Content-Security-Policy that forbids
scripts and every fetch, as a second line. The stylesheet is a template included verbatim, so it
needs no `|safe` either.

Rendering is pure (`render_report`: a run in, a page out, no clock); `write_report` is the edge.
The logic in Python is a few typed formatting filters and the grouping of results by view; the
layout lives in `templates/report.html.j2` and `templates/details.html.j2`.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from jinja2 import Environment, PackageLoader, StrictUndefined

from alerts.format import format_count, format_ratio, format_seconds, format_time, format_value
from checks.result import (
    CheckResult,
    CoverageDetails,
    DuplicateDetails,
    ErrorDetails,
    FreshnessDetails,
    LateArrivalDetails,
    NullRateDetails,
    RangeDetails,
    RowCountDetails,
    RunResult,
    SchemaDriftDetails,
    Status,
    rfc3339,
    worst,
)

log = logging.getLogger(__name__)

TEMPLATE = "report.html.j2"
LATEST = "latest.html"
SEVERITIES = ("P1", "P2", "P3", "P4")
STATUSES = tuple(sorted(Status, key=lambda s: s.rank))  # pass, warn, fail, error
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_POPULATIONS = MappingProxyType(
    {
        "offline": "entity ids seen in the offline store within the lookback window",
        "query": "recent request ids from a query or file",
        "online": "random keys of the online store (fallback)",
    }
)


@dataclass(frozen=True)
class ViewSection:
    """The results of one feature view, in the order evaluation gave them."""

    name: str
    status: Status
    results: tuple[CheckResult, ...]
    counts: Mapping[str, int]  # status value -> results


@dataclass(frozen=True)
class SeverityRow:
    """One row of the summary: results of one severity, by status."""

    severity: str
    counts: Mapping[str, int]  # status value -> results
    total: int


_DETAILS_KINDS: tuple[tuple[type, str], ...] = (
    (FreshnessDetails, "freshness"),
    (CoverageDetails, "coverage"),
    (NullRateDetails, "null_rate"),
    (SchemaDriftDetails, "schema_drift"),
    (LateArrivalDetails, "late_arrivals"),
    (RowCountDetails, "row_count"),
    (DuplicateDetails, "duplicates"),
    (RangeDetails, "range"),
    (ErrorDetails, "error"),
)


def details_kind(details: object) -> str:
    """Which block of `details.html.j2` shows these details; `other` shows their JSON fields."""
    return next((name for kind, name in _DETAILS_KINDS if isinstance(details, kind)), "other")


def population_label(population: str) -> str:
    """What a sampled population means, for the reader; an unknown one is shown as it is."""
    return _POPULATIONS.get(population, population)


# Shaping the run for the template.


def view_sections(results: Iterable[CheckResult]) -> tuple[ViewSection, ...]:
    """Results grouped by feature view: the worst views first, otherwise in the order they came."""
    grouped: dict[str, list[CheckResult]] = {}
    for result in results:
        grouped.setdefault(result.feature_view, []).append(result)
    sections = [
        ViewSection(
            name=name,
            status=worst([r.status for r in members]),
            results=tuple(members),
            counts=_by_status(members),
        )
        for name, members in grouped.items()
    ]
    sections.sort(key=lambda s: -s.status.rank)  # stable: equal views keep their order
    return tuple(sections)


def severity_rows(results: Iterable[CheckResult]) -> tuple[SeverityRow, ...]:
    """P1 to P4 always (a quiet severity shows zeros), then any other severity met, sorted."""
    by_severity: dict[str, list[CheckResult]] = {severity: [] for severity in SEVERITIES}
    for result in results:
        by_severity.setdefault(result.severity, []).append(result)
    order = [*SEVERITIES, *sorted(set(by_severity) - set(SEVERITIES))]
    return tuple(
        SeverityRow(name, _by_status(by_severity[name]), len(by_severity[name])) for name in order
    )


def _by_status(results: Iterable[CheckResult]) -> Mapping[str, int]:
    counts = {status.value: 0 for status in STATUSES}
    for result in results:
        counts[result.status.value] += 1
    return MappingProxyType(counts)


# Rendering and writing.


def environment() -> Environment:
    """A fresh environment over the packaged templates: autoescaped, undefined names fail."""
    env = Environment(
        loader=PackageLoader("alerts", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters |= {
        "in_unit": format_value,
        "duration": format_seconds,
        "percent": format_ratio,
        "count": format_count,
        "rfc3339": rfc3339,
        "time": format_time,
        "details_kind": details_kind,
        "population": population_label,
    }
    return env


def render_report(run: RunResult, title: str = "featmon report") -> str:
    """The whole page of one run. Pure: the same run renders the same bytes."""
    template = environment().get_template(TEMPLATE)
    return template.render(
        run=run,
        title=title,
        statuses=STATUSES,
        counts=_by_status(run.results),
        sections=view_sections(run.results),
        severities=severity_rows(run.results),
        elapsed=(run.finished_at - run.started_at).total_seconds(),
    )


def write_report(run: RunResult, directory: Path) -> Path:
    """Write `<directory>/<run_id>.html` and refresh `<directory>/latest.html`, each atomically
    (a reader sees the old page or the new one, never half of one); creates `directory`.

    The run id becomes a file name: letters, digits, `.`, `_` or `-`, starting with a letter or a
    digit, and not `latest`.
    """
    if not _RUN_ID.fullmatch(run.run_id) or run.run_id == "latest":
        raise ValueError(
            "expected a run id of at most 200 letters, digits, '.', '_' or '-', starting with a "
            f"letter or digit and not 'latest', to name the report file; found {run.run_id!r}"
        )
    page = render_report(run).encode("utf-8")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{run.run_id}.html"
    _replace_atomically(path, page)
    _replace_atomically(directory / LATEST, page)
    log.info("wrote report of run %s to %s (%s)", run.run_id, path, run.status.value)
    return path


def write_report_file(run: RunResult, path: Path) -> Path:
    """Write the report of `run` to exactly `path` (atomically); creates its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _replace_atomically(path, render_report(run).encode("utf-8"))
    log.info("wrote report of run %s to %s (%s)", run.run_id, path, run.status.value)
    return path


def _replace_atomically(path: Path, content: bytes) -> None:
    """Write a temporary file beside `path`, flush it to disk, then rename it over `path`."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temporary = Path(name)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        temporary.chmod(0o644)  # served by the sidecar or a web server; reports hold no secrets
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
