"""The HTML report of one run: one self-contained page (inline CSS, no script, nothing fetched).

Everything read from a store or a check file is data. The Jinja2 environment autoescapes every
template and nothing is marked safe; the page also carries a Content-Security-Policy that forbids
scripts and every fetch, as a second line. The stylesheet is a template included verbatim, so it
needs no `|safe` either.

Rendering is pure (`render_report`: a run in, a page out, no clock); `write_report` is the edge.
The logic in Python is a few typed formatting filters, the grouping of results by model and by
view, and what a model's results say together (`alerts.model_report`); the layout lives in
`templates/report.html.j2`, `templates/model.html.j2` and `templates/details.html.j2`.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import MappingProxyType

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup  # jinja2's own markup type

from alerts.format import format_count, format_ratio, format_seconds, format_time, format_value
from alerts.model_report import ModelSummary, summarize
from checks.kinds import KINDS
from checks.result import (
    CheckResult,
    ErrorDetails,
    RunResult,
    Status,
    rfc3339,
    worst,
)
from checks.serde import to_object

log = logging.getLogger(__name__)

TEMPLATE = "report.html.j2"
INDEX_TEMPLATE = "index.html.j2"
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
class ModelSection:
    """The results of one model, in the order evaluation gave them, and what they say together."""

    name: str
    status: Status
    results: tuple[CheckResult, ...]
    counts: Mapping[str, int]  # status value -> results
    summary: ModelSummary


@dataclass(frozen=True)
class SeverityRow:
    """One row of the summary: results of one severity, by status."""

    severity: str
    counts: Mapping[str, int]  # status value -> results
    total: int


def details_kind(result: CheckResult) -> str:
    """Which block of `details.html.j2` shows the result's details: `error`, `model_<kind>` for
    a model's check, or the name of the kind whose details type they are; a kind without a
    block of its own shows as `other` (their JSON fields)."""
    details = result.details
    if isinstance(details, ErrorDetails):
        return "error"
    if result.model is not None:
        return f"model_{result.kind}"
    return next((kind.name for kind in KINDS if isinstance(details, kind.details)), "other")


def population_label(population: str) -> str:
    """What a sampled population means, for the reader; an unknown one is shown as it is."""
    return _POPULATIONS.get(population, population)


# Shaping the run for the template.


def view_sections(results: Iterable[CheckResult]) -> tuple[ViewSection, ...]:
    """Results of views grouped by feature view: the worst views first, otherwise in the order
    they came."""
    grouped: dict[str, list[CheckResult]] = {}
    for result in results:
        if result.model is None:
            grouped.setdefault(result.feature_view or "", []).append(result)
    sections = [
        ViewSection(name, worst([r.status for r in members]), tuple(members), _by_status(members))
        for name, members in grouped.items()
    ]
    sections.sort(key=lambda s: -s.status.rank)  # stable: equal views keep their order
    return tuple(sections)


def model_sections(results: Iterable[CheckResult]) -> tuple[ModelSection, ...]:
    """Results of models grouped by model, each with its summary: the worst models first,
    otherwise in the order they came."""
    grouped: dict[str, list[CheckResult]] = {}
    for result in results:
        if result.model is not None:
            grouped.setdefault(result.model, []).append(result)
    sections = [
        ModelSection(
            name=name,
            status=worst([r.status for r in members]),
            results=tuple(members),
            counts=_by_status(members),
            summary=summarize(members),
        )
        for name, members in grouped.items()
    ]
    sections.sort(key=lambda s: -s.status.rank)  # stable: equal models keep their order
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


@functools.cache
def environment() -> Environment:
    """The environment over the packaged templates: autoescaped, undefined names fail.

    Built once per process and never changed afterwards (Jinja2 environments are safe to render
    from several threads): compiling the templates cost more than a whole probe, per run."""
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
        "breakable": breakable,
        "as_json": to_object,  # details of a kind without a macro of its own, as key and value
    }
    return env


_BREAKS = re.compile(r"(?<=[._/])|(?=@)")


def breakable(name: object) -> Markup:
    """`name` with a line-break opportunity (`<wbr>`) after each `.`, `_` or `/` and before `@`,
    so a narrow column wraps a check id or a feature name between its words, never inside one.
    Markup.join escapes every piece."""
    return Markup("<wbr>").join(piece for piece in _BREAKS.split(str(name)) if piece)


def render_report(
    run: RunResult,
    title: str = "featmon report",
    *,
    history: Mapping[str, Sequence[ChartPoint]] | None = None,
    index_href: str | None = None,
) -> str:
    """The whole page of one run. Pure: the same run renders the same bytes.

    `history`: check id -> its last values (newest first, as the state database gives them),
    drawn as a small chart beside each check's value; `index_href`: a link to the reports
    index (the HTTP sidecar serves it at `/reports/`, so a run page links to `./`)."""
    template = environment().get_template(TEMPLATE)
    return template.render(
        run=run,
        title=title,
        statuses=STATUSES,
        counts=_by_status(run.results),
        sections=view_sections(run.results),
        models=model_sections(run.results),
        severities=severity_rows(run.results),
        elapsed=(run.finished_at - run.started_at).total_seconds(),
        charts=_charts(run.results, history or {}),
        index_href=index_href,
    )


def write_report(
    run: RunResult,
    directory: Path,
    *,
    history: Mapping[str, Sequence[ChartPoint]] | None = None,
    index_href: str | None = None,
) -> Path:
    """Write `<directory>/<run_id>.html` and refresh `<directory>/latest.html`, each atomically
    (a reader sees the old page or the new one, never half of one); creates `directory`.

    The run id becomes a file name: letters, digits, `.`, `_` or `-`, starting with a letter or a
    digit, and not `latest`. `history` and `index_href` are those of `render_report`.
    """
    if not is_report_name(run.run_id) or run.run_id == "latest":
        raise ValueError(
            "expected a run id of at most 200 letters, digits, '.', '_' or '-', starting with a "
            f"letter or digit and not 'latest', to name the report file; found {run.run_id!r}"
        )
    page = render_report(run, history=history, index_href=index_href).encode("utf-8")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{run.run_id}.html"
    _replace_atomically(path, page)
    _replace_atomically(directory / LATEST, page)
    log.info("wrote report of run %s to %s (%s)", run.run_id, path, run.status.value)
    return path


def write_report_file(
    run: RunResult, path: Path, *, history: Mapping[str, Sequence[ChartPoint]] | None = None
) -> Path:
    """Write the report of `run` to exactly `path` (atomically); creates its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _replace_atomically(path, render_report(run, history=history).encode("utf-8"))
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


def is_report_name(run_id: str) -> bool:
    """Whether `run_id` can name a report file: at most 200 letters, digits, `.`, `_` or `-`,
    starting with a letter or a digit (so never a path, nor `..`)."""
    return _RUN_ID.fullmatch(run_id) is not None


# History charts: a check's last values as a small inline SVG (no script, nothing fetched).
# The scale is honest: the axis starts at zero (or below it, for negative values) and reaches
# the largest value or fail limit, both labelled, and the fail limits are drawn as dashed lines;
# a change of 10 s on 3 days is a flat line, not a cliff.

CHART_WIDTH = 170
CHART_HEIGHT = 36
PLOT_WIDTH = 112
"""The plot's width; the axis labels sit to its right."""
_PAD = 3.0


@dataclass(frozen=True)
class ChartPoint:
    """One past value of a check (None when the probe could not measure)."""

    run_id: str
    scheduled_at: datetime
    value: float | None
    status: Status


@dataclass(frozen=True)
class ChartDot:
    x: float
    y: float
    status: str
    label: str  # the tooltip: time, value and status


@dataclass(frozen=True)
class ChartLimit:
    """A fail limit drawn across the plot at height `y`."""

    y: float
    label: str


@dataclass(frozen=True)
class Chart:
    """The geometry of one sparkline, oldest value left. `line` is an SVG `points` list over
    the measured values; errors sit as dots on the baseline. The axis runs from `axis_low` to
    `axis_high` (formatted in the check's unit) and is labelled at both ends."""

    width: int
    height: int
    plot_width: int
    line: str
    dots: tuple[ChartDot, ...]
    limits: tuple[ChartLimit, ...]
    low: float | None
    high: float | None
    axis_low: str
    axis_high: str
    unit: str
    label: str  # what a screen reader says


@dataclass(frozen=True)
class _Axis:
    low: float
    high: float

    def y(self, value: float | None) -> float:
        bottom = CHART_HEIGHT - _PAD
        if value is None or not math.isfinite(value):
            return bottom
        return round(
            bottom - (value - self.low) / (self.high - self.low) * (CHART_HEIGHT - 2 * _PAD), 1
        )


def _axis(values: Sequence[float], limits: Sequence[float]) -> _Axis:
    """From zero (or the lowest value, when negative) to the highest value or limit."""
    low = min([0.0, *values, *limits])
    high = max([low, *values, *limits])
    return _Axis(low, high if high > low else low + 1.0)


def chart(
    points: Sequence[ChartPoint], unit: str = "count", limits: Sequence[float] = ()
) -> Chart | None:
    """The sparkline of `points` (newest first, as the state database lists them) against the
    fail `limits`; None for fewer than two points, where a line says nothing."""
    if len(points) < 2:
        return None
    ordered = list(reversed(points))
    values = [p.value for p in ordered if p.value is not None and math.isfinite(p.value)]
    finite_limits = [limit for limit in limits if math.isfinite(limit)]
    axis = _axis(values, finite_limits)
    step = (PLOT_WIDTH - 2 * _PAD) / (len(ordered) - 1)
    dots: list[ChartDot] = []
    for index, point in enumerate(ordered):
        shown = "no value" if point.value is None else format_value(point.value, unit)
        label = f"{format_time(point.scheduled_at)}: {shown} ({point.status.value})"
        dots.append(
            ChartDot(round(_PAD + index * step, 1), axis.y(point.value), point.status.value, label)
        )
    line = " ".join(
        f"{d.x},{d.y}" for d, p in zip(dots, ordered, strict=True) if p.value is not None
    )
    low, high = (min(values), max(values)) if values else (None, None)
    span = "no values" if low is None or high is None else _span(low, high, unit)
    return Chart(
        width=CHART_WIDTH,
        height=CHART_HEIGHT,
        plot_width=PLOT_WIDTH,
        line=line,
        dots=tuple(dots),
        limits=tuple(
            ChartLimit(axis.y(limit), f"limit {format_value(limit, unit)}")
            for limit in finite_limits
        ),
        low=low,
        high=high,
        axis_low=format_value(axis.low, unit),
        axis_high=format_value(axis.high, unit),
        unit=unit,
        label=f"last {len(ordered)} runs: {span}",
    )


def _span(low: float, high: float, unit: str) -> str:
    if low == high:
        return f"constant {format_value(low, unit)}"
    return f"from {format_value(low, unit)} to {format_value(high, unit)}"


def _charts(
    results: Iterable[CheckResult], history: Mapping[str, Sequence[ChartPoint]]
) -> Mapping[str, Chart]:
    out: dict[str, Chart] = {}
    for result in results:
        threshold = result.threshold
        limits = [limit for limit in (threshold.fail, threshold.fail_min) if limit is not None]
        drawn = chart(history.get(result.check, ()), threshold.unit, limits)
        if drawn is not None:
            out[result.check] = drawn
    return MappingProxyType(out)


# The reports index: recent runs and the current status of each model and feature view.


@dataclass(frozen=True)
class IndexRun:
    """One run listed in the index: of one feature view, of one model (`model` set), or of
    several (both None); `href` is None when its report file is absent."""

    run_id: str
    feature_view: str | None
    scheduled_at: datetime
    duration_seconds: float
    status: Status
    counts: Mapping[str, int]  # status value -> results
    href: str | None
    model: str | None = None


@dataclass(frozen=True)
class IndexView:
    """One feature view's (or model's) latest results: its worst status and when it last ran."""

    name: str
    status: Status
    last_run: datetime
    last_run_id: str
    counts: Mapping[str, int]  # status value -> results
    href: str | None  # the report of its last run, if written


def render_index(
    runs: Sequence[IndexRun],
    views: Sequence[IndexView],
    models: Sequence[IndexView],
    title: str = "featmon reports",
) -> str:
    """The reports index: the models' and the views' current status, then recent runs, newest
    first, each linking to its report. Pure, self-contained like a run's page."""
    template = environment().get_template(INDEX_TEMPLATE)
    return template.render(title=title, runs=runs, views=views, models=models, statuses=STATUSES)
