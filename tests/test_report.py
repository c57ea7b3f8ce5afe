"""The HTML report of one run: escaped data, self-contained, formatted numbers, atomic writes."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta, timezone
from html.parser import HTMLParser
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType, SimpleNamespace
from typing import cast

import pytest
from jinja2 import UndefinedError

from alerts.format import format_value
from alerts.report import LATEST, ChartPoint, chart, render_report, write_report
from checks.result import (
    CheckResult,
    CoverageDetails,
    Details,
    ErrorDetails,
    FreshnessDetails,
    NullRateDetails,
    Retyped,
    RunResult,
    SampleInfo,
    SchemaDriftDetails,
    Status,
    Threshold,
)
from checks.stats import wilson

XSS = "<script>alert(1)</script>"
XSS_VIEW = "<img src=x onerror=alert(1)>"
XSS_REASON = 'redis_prod: timed out after 2s\n</pre></td><script>alert("reason")</script>'
SCHEDULED = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
SAMPLE = SampleInfo(population="offline", asked=2000, found=1987, decode_errors=3)
FRESHNESS = Threshold("max", 3600.0, 1800.0, "seconds")


def result(**fields: object) -> CheckResult:
    """A passing online freshness result of `user_stats`, with `fields` replaced."""
    base = CheckResult(
        check="user_stats.freshness@online",
        kind="freshness",
        feature_view="user_stats",
        feature=None,
        store="redis_prod",
        target="online",
        status=Status.PASS,
        severity="P1",
        value=42.0,
        threshold=FRESHNESS,
        sample_size=1987,
        details=FreshnessDetails(p50=12.0, p90=30.0, p99=42.0, max=50.0, sample=SAMPLE),
    )
    return replace(base, **fields)  # type: ignore[arg-type]  # any CheckResult field, checked by dataclasses.replace


def sample_run() -> RunResult:
    """Four views: two passing (first in, so order matters), one failing, one erroring."""
    return RunResult(
        run_id="20250314T093000Z-7f3a",
        # Given in another zone: the report shows it in UTC.
        scheduled_at=SCHEDULED.astimezone(timezone(timedelta(hours=2))),
        started_at=SCHEDULED + timedelta(seconds=1.5),
        finished_at=SCHEDULED + timedelta(seconds=5.7),
        results=(
            result(feature_view="item_embeddings", check="item_embeddings.freshness@online"),
            result(feature_view="driver_stats", check="driver_stats.freshness@online"),
            *user_stats(),
            *hostile_view(),
        ),
    )


def user_stats() -> tuple[CheckResult, ...]:
    covered = 1880
    return (
        result(
            status=Status.FAIL,
            value=3720.0,
            details=FreshnessDetails(p50=600.0, p90=1800.0, p99=3720.0, max=7260.0, sample=SAMPLE),
        ),
        result(
            check="user_stats.coverage@online",
            kind="coverage",
            status=Status.WARN,
            value=covered / 2000,
            threshold=Threshold("min", 0.90, 0.95, "ratio"),
            sample_size=2000,
            details=CoverageDetails(
                covered=covered,
                sampled=2000,
                interval=wilson(covered, 2000),
                max_age_seconds=7 * 86400,
                required=("rolling_7d_revenue", "purchase_count_30d"),
                uncovered=MappingProxyType(
                    {"missing_key": 13, "undecodable": 0, "absent": 40, "null": 50, "stale": 17}
                ),
                sample=SAMPLE,
            ),
            labels=MappingProxyType({"team": "growth"}),
        ),
        result(
            check="user_stats.null_rate.rolling_7d_revenue@online",
            kind="null_rate",
            feature="rolling_7d_revenue",
            severity="P2",
            value=6 / 1987,
            threshold=Threshold("max", 0.01, 0.005, "ratio"),
            details=NullRateDetails(
                nulls=4, rows=1987, interval=wilson(6, 1987), absent=2, sample=SAMPLE
            ),
        ),
        result(
            check="user_stats.freshness@offline",
            store="warehouse",
            target="offline",
            value=5400.0,
            threshold=Threshold("max", 6 * 3600.0, None, "seconds"),
            sample_size=None,
            details=FreshnessDetails(
                p50=5400.0,
                p90=5400.0,
                p99=5400.0,
                max=5400.0,
                newest=SCHEDULED - timedelta(seconds=5400),
            ),
        ),
    )


def hostile_view() -> tuple[CheckResult, ...]:
    """A view whose names, columns, labels and error text all carry markup."""
    return (
        result(
            feature_view=XSS_VIEW,
            check=f"{XSS_VIEW}.null_rate.{XSS}@offline",
            kind="null_rate",
            feature=XSS,
            store="warehouse",
            target="offline",
            severity="P2",
            value=0.0,
            threshold=Threshold("max", 0.01, None, "ratio"),
            sample_size=120_000,
            details=NullRateDetails(nulls=0, rows=120_000, interval=None, window_seconds=86400),
        ),
        result(
            feature_view=XSS_VIEW,
            check="drift",
            kind="schema_drift",
            store="warehouse",
            target="offline",
            status=Status.FAIL,
            severity="P2",
            value=3.0,
            threshold=Threshold("max", 0.0, None, "count"),
            sample_size=None,
            details=SchemaDriftDetails(
                added=(XSS,),
                removed=("purchase_count_30d",),
                retyped=(Retyped("last_active_days_ago", "int", "VARCHAR"),),
            ),
        ),
        result(
            feature_view=XSS_VIEW,
            check="fresh",
            status=Status.ERROR,
            severity="P1",
            value=None,
            sample_size=None,
            details=ErrorDetails(XSS_REASON),
            labels=MappingProxyType({"team": "<b>growth</b>"}),
        ),
    )


INLINE = frozenset({"a", "code", "span", "strong", "time", "b", "wbr"})


class Page(HTMLParser):
    """The parts of a rendered page the tests look at."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.style = ""
        self.tables: dict[str, list[list[str]]] = {}  # tables with an id: rows of cell texts
        self.rows: list[str] = []  # check rows (<tr class="s-...">), their whole text
        self.headings: list[str] = []  # <h2> texts, in order
        self.tiles: dict[str, str] = {}  # status -> the text of its summary tile
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self._row_depth = 0
        self._heading: list[str] | None = None
        self._tile: tuple[str, list[str]] | None = None
        self._in_style = False
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        table_id = attributes.get("id")
        if tag == "table" and table_id:
            self._table = table_id
            self.tables[table_id] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in {"td", "th"} and self._table is not None:
            self._cell = []
        elif tag == "style":
            self._in_style = True
        elif tag == "h2":
            self._heading = []
        elif tag == "li" and attributes.get("data-status"):
            self._tile = (attributes["data-status"] or "", [])
        if self._row is not None and tag not in INLINE:
            self._row.append(" ")
        if tag == "tr" and self._row is not None:
            self._row_depth += 1
        elif tag == "tr" and (attributes.get("class") or "").startswith("s-"):
            self._row, self._row_depth = [], 1

    def handle_endtag(self, tag: str) -> None:
        if self._row is not None and tag not in INLINE:
            self._row.append(" ")
        if tag in {"td", "th"} and self._table is not None and self._cell is not None:
            self.tables[self._table][-1].append(normalize("".join(self._cell)))
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag == "style":
            self._in_style = False
        elif tag == "h2" and self._heading is not None:
            self.headings.append(normalize("".join(self._heading)))
            self._heading = None
        elif tag == "li" and self._tile is not None:
            self.tiles[self._tile[0]] = normalize("".join(self._tile[1]))
            self._tile = None
        if tag == "tr" and self._row is not None:
            self._row_depth -= 1
            if self._row_depth == 0:
                self.rows.append(normalize("".join(self._row)))
                self._row = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        tile = self._tile[1] if self._tile is not None else None
        for buffer in (self._cell, self._row, self._heading, tile):
            if buffer is not None:
                buffer.append(data)
        if self._in_style:
            self.style += data

    def row(self, check: str) -> str:
        """The text of the check's row in its view's table."""
        found = [row for row in self.rows if row.startswith(check + " ")]
        assert len(found) == 1, f"expected one row for {check!r}, found {len(found)}"
        return found[0]

    def table(self, table_id: str) -> dict[str, list[str]]:
        """An id'd table as first cell -> the other cells."""
        return {row[0]: row[1:] for row in self.tables[table_id] if row}


def normalize(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def html() -> str:
    return render_report(sample_run(), title="featmon: prod")


@pytest.fixture(scope="module")
def page(html: str) -> Page:
    return Page(html)


def test_names_labels_and_reasons_from_stores_render_as_text(html: str, page: Page) -> None:
    assert not [tag for tag, _ in page.tags if tag in {"script", "img", "iframe", "object", "b"}]
    handlers = [name for _, attrs in page.tags for name in attrs if name.startswith("on")]
    assert handlers == []
    assert "<script" not in html
    text = "".join(page.text)
    for hostile in (XSS, XSS_VIEW, XSS_REASON, "team=<b>growth</b>"):
        assert hostile in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_page_fetches_nothing(page: Page) -> None:
    for tag, attrs in page.tags:
        for name in ("src", "href", "action", "srcset", "poster", "data", "formaction"):
            value = (attrs.get(name) or "").strip()
            assert not value or value.startswith(("#", "data:")), f"<{tag} {name}={value!r}>"
    assert tag_count(page, "link", rel="stylesheet") == 0
    assert "url(" not in page.style
    assert "@import" not in page.style
    assert page.style.strip(), "the stylesheet is inline"
    policies = [
        a["content"] for t, a in page.tags if a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert policies
    assert "default-src 'none'" in (policies[0] or "")


def tag_count(page: Page, tag: str, **attributes: str) -> int:
    return sum(
        1
        for name, attrs in page.tags
        if name == tag and all(attrs.get(k) == v for k, v in attributes.items())
    )


def test_templates_mark_nothing_safe() -> None:
    for template in files("alerts").joinpath("templates").iterdir():
        source = template.read_text(encoding="utf-8")
        assert not re.search(r"\|\s*safe\b", source), template.name
        assert "autoescape false" not in source, template.name


# Text colour -> the backgrounds it is drawn on (CSS custom properties of report.css).
CONTRASTED = [
    *[("fg", background) for background in ("bg", "soft", "head", "error-bg")],
    *[("muted", background) for background in ("bg", "soft", "head")],
    ("link", "bg"),
    *[(f"{s.value}-fg", f"{s.value}-bg") for s in Status],  # badges, tiles
    *[(f"{s.value}-fg", "bg") for s in Status],  # borders and the decode-error alarm
]


def test_every_text_colour_meets_wcag_aa_contrast_in_both_schemes() -> None:
    css = files("alerts").joinpath("templates", "report.css").read_text(encoding="utf-8")
    light_css, dark_css = css.split("@media (prefers-color-scheme: dark)")
    light = dict(re.findall(r"--([\w-]+):\s*(#[0-9a-f]{6})", light_css.split("}")[0]))
    dark = light | dict(re.findall(r"--([\w-]+):\s*(#[0-9a-f]{6})", dark_css.split("}")[0]))
    for scheme in (light, dark):
        for text, background in CONTRASTED:
            ratio = contrast(scheme[text], scheme[background])
            assert ratio >= 4.5, f"--{text} on --{background}: {ratio:.2f}"


def contrast(first: str, second: str) -> float:
    """The WCAG 2 contrast ratio of two `#rrggbb` colours."""

    def luminance(colour: str) -> float:
        channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_header_names_the_run_in_utc(page: Page) -> None:
    text = normalize(" ".join(page.text))
    assert "Run 20250314T093000Z-7f3a" in text
    assert "Scheduled (UTC) 2025-03-14T09:30:00Z" in text
    assert "Started 2025-03-14T09:30:01.500Z" in text
    assert "Duration 4.2s" in text
    assert "ERROR · featmon: prod · 20250314T093000Z-7f3a" in text  # the <title>
    assert tag_count(page, "time", datetime="2025-03-14T09:30:00Z") >= 1


def test_counts_by_status_and_severity(page: Page) -> None:
    assert page.tiles == {"error": "1 error", "fail": "2 fail", "warn": "1 warn", "pass": "5 pass"}
    assert list(page.tiles) == ["error", "fail", "warn", "pass"], "the worst first"
    matrix = page.table("summary-severity")
    #                  pass, warn, fail, error, total
    assert matrix["P1"] == ["3", "1", "1", "1", "6"]
    assert matrix["P2"] == ["2", "0", "1", "0", "3"]
    assert matrix["P3"] == ["0", "0", "0", "0", "0"]
    assert matrix["P4"] == ["0", "0", "0", "0", "0"]
    assert matrix["all"] == ["5", "1", "2", "1", "9"]


def test_views_come_worst_first_and_otherwise_in_run_order(page: Page) -> None:
    views = [h.split(" ")[0] for h in page.headings if h != "Summary"]
    assert views == ["<img", "user_stats", "item_embeddings", "driver_stats"]
    index = page.table("views-index")
    assert list(index) == [
        "Feature view",
        XSS_VIEW,
        "user_stats",
        "item_embeddings",
        "driver_stats",
    ]
    assert index["user_stats"] == ["fail", "2", "1", "1", "0"]


def test_passing_views_start_folded_and_the_others_open(page: Page) -> None:
    opened = [("open" in attrs) for tag, attrs in page.tags if tag == "details"]
    assert opened == [True, True, False, False]


def test_values_are_formatted_for_their_unit(page: Page) -> None:
    assert "1h 02m" in page.row("user_stats.freshness@online")
    assert "max 1h 00m warn 30m 00s" in page.row("user_stats.freshness@online")
    coverage = page.row("user_stats.coverage@online")
    assert "94.0% n = 2,000 min 90.0% warn 95.0% warn" in coverage
    assert "0.302%" in page.row("user_stats.null_rate.rolling_7d_revenue@online")
    assert "3 n" not in page.row("drift")
    assert " 3 max 0 fail P2" in page.row("drift")
    assert "— max 1h 00m warn 30m 00s error P1" in page.row("fresh")


def test_freshness_shows_quantiles_online_and_the_newest_event_offline(page: Page) -> None:
    online = page.row("user_stats.freshness@online")
    assert "p50 p90 p99 max 10m 00s 30m 00s 1h 02m 2h 01m" in online
    assert "population offline (entity ids seen in the offline store" in online
    assert "asked 2,000 found 1,987 decode errors 3" in online
    offline = page.row("user_stats.freshness@offline")
    assert "newest event 2025-03-14T08:00:00Z age 1h 30m" in offline
    assert "p50" not in offline


def test_coverage_shows_its_interval_and_why_entities_were_not_covered(page: Page) -> None:
    row = page.row("user_stats.coverage@online")
    low, high = wilson(1880, 2000).low, wilson(1880, 2000).high
    assert f"95% interval {low * 100:.1f}% \N{EN DASH} {high * 100:.1f}%" in row
    assert "covered 1,880 of 2,000" in row
    assert "max age 7d 00h" in row
    assert "required rolling_7d_revenue, purchase_count_30d" in row
    assert "not in the online store (missing_key) 13 0.650%" in row
    assert "a feature is null (null) 50 2.50%" in row
    assert "undecodable" not in row.split("not covered because")[1], "zero reasons are left out"
    assert "team=growth" in row


def test_null_rates_show_nulls_absent_rows_and_interval_or_window(page: Page) -> None:
    online = page.row("user_stats.null_rate.rolling_7d_revenue@online")
    interval = wilson(6, 1987)
    assert "nulls 4 absent 2 rows 1,987 95% interval" in online
    assert f"{interval.low * 100:.3f}%" in online
    offline = page.row(f"{XSS_VIEW}.null_rate.{XSS}@offline")
    assert "nulls 0 rows 120,000 window last 1d 00h" in offline
    assert "absent" not in offline


def test_schema_drift_lists_added_removed_and_retyped_columns(page: Page) -> None:
    row = page.row("drift")
    assert f"added {XSS} removed purchase_count_30d" in row
    assert "retyped column expected found last_active_days_ago int VARCHAR" in row


def test_an_alarm_is_a_class_of_the_value_not_text_beside_it(html: str) -> None:
    """3 decode errors are marked by the element's class, not by escaped markup."""
    assert '<dd class="alarm">3</dd>' in html
    assert "&#34;alarm&#34;" not in html


def test_an_error_shows_its_reason_in_full(html: str, page: Page) -> None:
    pre = [t for t, a in page.tags if t == "pre"]
    assert pre == ["pre"]
    assert XSS_REASON in "".join(page.text)
    assert "redis_prod: timed out after 2s\n&lt;/pre&gt;" in html


def test_rendering_is_pure() -> None:
    assert render_report(sample_run()) == render_report(sample_run())


def test_a_run_without_results_renders() -> None:
    run = RunResult("empty", SCHEDULED, SCHEDULED, SCHEDULED, ())
    page = Page(render_report(run))
    assert "This run has no results." in "".join(page.text)
    assert page.table("summary-severity")["all"] == ["0", "0", "0", "0", "0"]


@dataclass(frozen=True)
class FutureDetails:
    """Details of a kind the template has no block for yet."""

    drift_psi: float

    def as_json(self) -> dict[str, float]:
        return {"drift_psi": self.drift_psi}


def test_details_of_an_unknown_kind_show_their_fields() -> None:
    details = cast(Details, FutureDetails(drift_psi=0.31))
    run = replace(sample_run(), results=(result(check="psi", kind="psi", details=details),))
    assert "drift_psi 0.31" in Page(render_report(run)).row("psi")


def test_a_missing_attribute_fails_the_render_instead_of_rendering_blank() -> None:
    """A result as a stale producer might hand it over: every field but `store`."""
    kept = {f.name: getattr(result(), f.name) for f in fields(CheckResult) if f.name != "store"}
    run = replace(sample_run(), results=(cast(CheckResult, SimpleNamespace(**kept)),))
    with pytest.raises(UndefinedError, match="store"):
        render_report(run)


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (None, "seconds", "—"),
        (0.0, "seconds", "0s"),
        (0.35, "seconds", "350ms"),
        (4.24, "seconds", "4.2s"),
        (42.4, "seconds", "42s"),
        (59.7, "seconds", "1m 00s"),
        (725.0, "seconds", "12m 05s"),
        (3720.0, "seconds", "1h 02m"),
        (3779.0, "seconds", "1h 02m"),
        (2 * 86400 + 3 * 3600 + 59, "seconds", "2d 03h"),
        (-90.0, "seconds", "-1m 30s"),
        (float("nan"), "seconds", "NaN"),
        (0.94, "ratio", "94.0%"),
        (0.0123, "ratio", "1.23%"),
        (0.005, "ratio", "0.500%"),
        (0.0, "ratio", "0%"),
        (1.0, "ratio", "100%"),
        (0.9999, "ratio", "99.99%"),
        (0.99999, "ratio", "99.999%"),
        (1 - 1e-12, "ratio", "<100%"),
        (1e-12, "ratio", "<0.0001%"),
        (3.0, "count", "3"),
        (12345, "count", "12,345"),
        (2.5, "count", "2.50"),
        (float("inf"), "count", "∞"),
        (1.5, "psi", "1.5"),
    ],
)
def test_format_value(value: float | None, unit: str, text: str) -> None:
    assert format_value(value, unit) == text


def test_write_report_writes_the_run_and_latest(tmp_path: Path) -> None:
    directory = tmp_path / "reports" / "prod"
    run = sample_run()
    path = write_report(run, directory)
    assert path == directory / "20250314T093000Z-7f3a.html"
    assert path.read_text(encoding="utf-8") == render_report(run)
    assert (directory / LATEST).read_bytes() == path.read_bytes()
    assert sorted(p.name for p in directory.iterdir()) == [path.name, LATEST]
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_new_report_replaces_latest_whole_under_its_readers(tmp_path: Path) -> None:
    first = write_report(sample_run(), tmp_path)
    with (tmp_path / LATEST).open("rb") as reader:
        second_run = replace(sample_run(), run_id="second", results=())
        second = write_report(second_run, tmp_path)
        assert reader.read() == first.read_bytes(), "a reader keeps the page it opened"
    assert (tmp_path / LATEST).read_bytes() == second.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, second.name, LATEST])


@pytest.mark.parametrize("run_id", ["../escape", "a/b", ".hidden", "latest", "", "x" * 201])
def test_a_run_id_that_is_no_plain_file_name_is_refused(tmp_path: Path, run_id: str) -> None:
    with pytest.raises(ValueError, match="expected a run id"):
        write_report(replace(sample_run(), run_id=run_id), tmp_path / "reports")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium is not installed")
def test_chromium_renders_the_page_offline(tmp_path: Path) -> None:
    page = write_report(sample_run(), tmp_path / "reports")
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--window-size=1280,1600",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 10_000, "a blank page compresses to almost nothing"


# --- names that wrap, targets said once, honest charts -------------------------------------------


def test_check_ids_and_features_may_break_only_between_their_words() -> None:
    """A long check id wraps after `.` or `_` or before `@`, never inside a word; the hostile
    name stays escaped."""
    long_id = "user_stats.null_rate.rolling_7d_revenue@online"
    html = render_report(replace(sample_run(), results=(result(check=long_id, feature="a_b<i>"),)))
    assert (
        "<code>user_<wbr>stats.<wbr>null_<wbr>rate.<wbr>rolling_<wbr>7d_<wbr>revenue<wbr>@online</code>"
        in html
    )
    assert "<code>a_<wbr>b&lt;i&gt;</code>" in html
    css = files("alerts").joinpath("templates", "report.css").read_text(encoding="utf-8")
    rule = re.search(r"table\.checks > tbody > tr > th > code \{([^}]*)\}", css)
    assert rule is not None
    assert "anywhere" not in rule[1]


def test_the_target_names_its_store_only_when_the_store_has_another_name() -> None:
    """A store called `online` shows `online` once; `redis_prod` shows beside its target."""
    same = Page(render_report(replace(sample_run(), results=(result(store="online"),))))
    other = Page(render_report(replace(sample_run(), results=(result(),))))
    assert " online online " not in same.row("user_stats.freshness@online")
    assert "online store redis_prod" in other.row("user_stats.freshness@online")


def history(*values: float | None) -> list[ChartPoint]:
    """Points newest first, one run a minute apart."""
    start = datetime(2026, 11, 26, 6, tzinfo=UTC)
    return [
        ChartPoint(f"r{i}", start - timedelta(minutes=i), value, Status.PASS)
        for i, value in enumerate(values)
    ]


def test_a_small_change_on_a_large_value_draws_a_flat_line() -> None:
    """3 days growing by 10 s a run stays within a pixel: the axis starts at zero."""
    drawn = chart(history(259_220.0, 259_210.0, 259_200.0), "seconds")
    assert drawn is not None
    heights = [dot.y for dot in drawn.dots]
    assert max(heights) - min(heights) < 1.0
    assert drawn.axis_low == "0s"
    assert drawn.axis_high == format_value(259_220.0, "seconds")


def test_the_axis_reaches_the_fail_limit_and_draws_it() -> None:
    """Values under their limit sit below its dashed line, and the axis is labelled up to it."""
    drawn = chart(history(600.0, 1200.0), "seconds", limits=[3600.0])
    assert drawn is not None
    assert drawn.axis_high == "1h 00m"
    (limit,) = drawn.limits
    assert all(dot.y > limit.y for dot in drawn.dots)  # SVG y grows downwards


def test_the_chart_labels_its_axis_in_the_page() -> None:
    """The SVG carries the axis' two ends as text."""
    run = sample_run()
    page = render_report(run, history={"user_stats.freshness@online": history(42.0, 40.0)})
    assert '<text class="spark-tick"' in page
    assert ">0s</text>" in page
