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
import math
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

from jinja2 import Environment, PackageLoader, StrictUndefined

from checks.result import (
    CheckResult,
    CoverageDetails,
    ErrorDetails,
    FreshnessDetails,
    NullRateDetails,
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


# Formatting: pure functions, registered as filters.


def format_seconds(seconds: float) -> str:
    """Ages and durations as people read them: `350ms`, `4.2s`, `42s`, `12m 05s`, `1h 02m`,
    `3d 04h`. The two largest units, the smaller truncated; negative ages (a clock ahead of the
    scheduler) keep their sign."""
    if not math.isfinite(seconds):
        return _non_finite(seconds)
    sign = "-" if seconds < 0 else ""
    size = abs(seconds)
    if size == 0:
        return "0s"
    if size < 1:
        return f"{sign}{round(size * 1000)}ms"
    if size < 9.95:
        return f"{sign}{size:.1f}s"
    whole = round(size)
    if whole < 60:
        return f"{sign}{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{sign}{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{sign}{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{sign}{days}d {hours:02d}h"


def format_ratio(ratio: float) -> str:
    """A rate as a percentage with three significant digits (`94.0%`, `1.23%`, `0.500%`), and at
    most four decimals. Rounding never makes a partial rate read as exactly 0% or 100%."""
    if not math.isfinite(ratio):
        return _non_finite(ratio)
    percent = ratio * 100
    if percent in (0, 100):
        return f"{percent:.0f}%"
    decimals = min(4, max(1, 2 - math.floor(math.log10(abs(percent)))))
    text = f"{percent:.{decimals}f}"
    while float(text) in (0, 100) and decimals < 4:
        decimals += 1
        text = f"{percent:.{decimals}f}"
    if float(text) == 0:
        return "<0.0001%"
    if float(text) == 100:
        return ">100%" if percent > 100 else "<100%"
    return f"{text}%"


def format_count(count: float) -> str:
    """Counts as integers with thousands separators; a fractional count keeps two decimals."""
    if not math.isfinite(count):
        return _non_finite(count)
    if float(count).is_integer():
        return f"{int(count):,}"
    return f"{count:,.2f}"


def format_value(value: float | None, unit: str) -> str:
    """A measured value or threshold in its unit; `—` when there is none (an error result)."""
    if value is None:
        return "—"
    if unit == "seconds":
        return format_seconds(value)
    if unit == "ratio":
        return format_ratio(value)
    if unit == "count":
        return format_count(value)
    return f"{value:g}"


def _non_finite(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "∞" if value > 0 else "-∞"


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC, to the second, or to the millisecond when the time has a fraction."""
    precision = "milliseconds" if moment.microsecond else "seconds"
    return moment.astimezone(UTC).isoformat(timespec=precision).replace("+00:00", "Z")


def details_kind(details: object) -> str:
    """Which block of `details.html.j2` shows these details; `other` shows their JSON fields."""
    if isinstance(details, FreshnessDetails):
        return "freshness"
    if isinstance(details, CoverageDetails):
        return "coverage"
    if isinstance(details, NullRateDetails):
        return "null_rate"
    if isinstance(details, SchemaDriftDetails):
        return "schema_drift"
    if isinstance(details, ErrorDetails):
        return "error"
    return "other"


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
