"""A model in the HTML report: a section of its own before the views, worst first, saying where
its requests were seen, its coverage and the view that costs the most of it, each view's
freshness against its max age, the features served worst, and its checks with their history;
every name, feature, owner and label escaped. The results are judged (`checks.served_judge`)
from observations of `tests.test_models`."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType

import pytest

from alerts.report import render_index, render_report
from checks.observation import Ages, FeatureMisses, ModelObservation, ProbeFailure, ViewMisses
from checks.result import CheckResult, RunResult
from checks.served import (
    Model,
    ModelCoverageCheck,
    ModelFreshnessCheck,
    ModelNullRateCheck,
    ServedModel,
    ServedView,
    ServingLog,
    plan_model,
)
from checks.served_judge import judge
from monitor.http.reports import index_models, index_runs, index_views
from monitor.runs.reports import render_recorded
from monitor.state import StateStore, stored_results
from tests.model_fixtures import with_freshness_risk
from tests.test_models import AT, MODEL, loaded_model, observation, results
from tests.test_report import XSS, XSS_VIEW, Page, history, normalize, sample_run

SAMPLED = {"source": "requests", "asked": 1200, "population": "ids_file", "since": None,
           "until": None, "status_disagreements": None}  # fmt: skip


def model_run(tmp_path: Path, observed: ModelObservation | ProbeFailure | None = None) -> RunResult:
    """The report's sample run (four views) with the model `fraud`'s results after them."""
    judged = results(tmp_path, observation() if observed is None else observed)
    return replace(sample_run(), results=(*sample_run().results, *judged.values()))


def text(page: Page) -> str:
    return normalize(" ".join(page.text))


@pytest.fixture
def page(tmp_path: Path) -> Page:
    return Page(render_report(model_run(tmp_path)))


def test_a_model_has_a_section_of_its_own_before_the_views(page: Page) -> None:
    """Not a view named `model:fraud`: the model heads its own section, first though a view is
    worse (in error): models come before the views they are served from. It has an index of
    its own."""
    sections = [h for h in page.headings if h != "Summary"]
    assert sections[0] == "model fraud"
    assert not [h for h in sections if "model:" in h]
    assert "fraud" not in page.table("views-index")
    assert page.table("models-index")["fraud"] == ["fail", "4", "0", "3", "0"]
    assert "Checks 16 in 4 feature views and 1 model" in text(page)


def test_coverage_names_the_view_that_costs_the_most_and_what_fixing_it_gives_back(
    page: Page,
) -> None:
    facts = text(page)
    assert "coverage 93.0% fail 930 of 1,000 requests" in facts
    assert (
        "costs the most merchants : 50 requests uncovered (5.00%), 40 by it alone: fixing it "
        "gives back 4.00% (coverage 97.0%)"
    ) in facts
    views = page.table("model-1-views")
    assert list(views) == ["view", "merchants", "pairs", "users"]  # the costliest first
    assert views["merchants"][:3] == ["50 5.00%", "40 +4.00%", "older than its max age (stale) 50"]
    assert views["users"][:3] == ["5 0.500%", "0", "null or NaN (null) 5"]


def test_each_views_freshness_is_held_against_its_max_age(tmp_path: Path) -> None:
    """p50 and p99 of each view's values at the request's time beside its max age; merchants'
    p99 (1h 23m) is beyond its 1h and marked."""
    html = render_report(model_run(tmp_path))
    views = Page(html).table("model-1-views")
    assert views["merchants"][3:] == ["1h 00m", "10m 00s", "1h 23m"]
    assert views["pairs"][3:] == ["7d 00h", "10s", "30s"]
    assert html.count('<td class="num alarm">') == 1
    assert '<td class="num alarm">1h 23m</td>' in html


def test_the_worst_features_come_first_with_their_null_rates(page: Page) -> None:
    """Features by requests missing them; users:visits, served to every request, is left out."""
    features = page.table("model-1-features")
    assert list(features) == ["feature", "merchants:rating", "pairs:txns", "users:spend"]
    assert features["pairs:txns"] == ["30 3.00%", "no value (absent) 30", "3.00% fail"]
    assert features["merchants:rating"][2] == "0% pass"


def test_a_serving_log_says_its_window_and_that_it_is_exact(page: Page) -> None:
    assert (
        "requests 1,000: every request logged in the serving log on lake from "
        "2026-12-01T10:00:00Z to 2026-12-01T12:00:00Z (exact)"
    ) in text(page)


def test_a_request_sample_says_how_many_were_probed_and_gives_intervals(tmp_path: Path) -> None:
    page = Page(render_report(model_run(tmp_path, observation(**SAMPLED))))
    facts = text(page)
    assert (
        "requests 1,000: recent requests probed online now, of 1,200 drawn from ids_file "
        "(a sample: estimates with 95% intervals)"
    ) in facts
    assert (
        "coverage 93.0% fail 930 of 1,000 requests (95% interval 91.2% \N{EN DASH} 94.4%)" in facts
    )
    assert "95% interval 2.11% \N{EN DASH} 4.25%" in page.row("fraud.null_rate.pairs.txns")


def test_each_check_of_the_model_shows_its_details(page: Page) -> None:
    coverage = page.row("fraud.coverage")
    assert "covered 930 of 1,000 requests logged status disagrees 30 values" in coverage
    assert "serving log 2026-12-01T10:00:00Z \N{EN DASH} 2026-12-01T12:00:00Z" in coverage
    freshness = page.row("fraud.freshness.requests")
    assert "p50 p90 p99 max 10m 00s 50m 00s 1h 23m 2h 30m" in freshness
    assert "over the oldest value of each request (1,000 ages)" in freshness
    assert "no value 30 null 0 requests 1,000" in page.row("fraud.null_rate.pairs.txns")


def test_the_worst_age_predicted_for_a_view_stands_beside_its_ages(tmp_path: Path) -> None:
    """merchants, materialized hourly at a median age of 10 minutes, will reach 40 minutes:
    within its hour (a pass); the other views have no prediction."""
    page = Page(render_report(replace(sample_run(), results=tuple(with_freshness_risk(tmp_path)))))
    views = page.table("model-1-views")
    assert views["view"][-1] == "worst predicted"
    assert views["merchants"][-1] == "40m 00s pass"
    assert views["pairs"][-1] == "\N{EM DASH}"
    row = page.row("fraud.freshness_risk.merchants")
    assert (
        "predicted worst age 40m 00s (age p50 10m 00s + half of materialized every 1h 00m) "
        "max age 1h 00m oldest served now 2h 30m"
    ) in row


def test_a_model_checks_history_is_charted_as_a_views_is(tmp_path: Path) -> None:
    run = model_run(tmp_path)
    html = render_report(run, history={"fraud.coverage": history(0.93, 0.97, 0.99)})
    row = Page(html).row("fraud.coverage")
    assert "last 3 runs: from 93.0% to 99.0%" in row
    assert "limit 95.0%" in row


def test_a_model_with_a_freshness_check_only_still_holds_ages_against_max_ages(
    tmp_path: Path,
) -> None:
    only_freshness = MODEL.split("    checks:\n")[0] + (
        "    checks:\n      - {kind: freshness, quantile: p99, max: 1h}\n"
    )
    (planned,) = loaded_model(tmp_path, only_freshness).planned
    run = replace(sample_run(), results=(judge(planned, observation()),))
    page = Page(render_report(run))
    views = page.table("model-1-views")
    assert views["merchants"] == ["—", "—", "—", "1h 00m", "10m 00s", "1h 23m"]
    assert "costs the most" not in text(page)


def test_a_model_that_could_not_be_measured_says_so_and_why(tmp_path: Path) -> None:
    failed = ProbeFailure("lake", "model:fraud", "store 'lake': no file logs/fraud")
    page = Page(render_report(model_run(tmp_path, failed)))
    assert "requests not measured: every check is in error" in text(page)
    assert "store 'lake': no file logs/fraud" in page.row("fraud.coverage")
    assert "model-1-views" not in page.tables


def test_a_recorded_models_report_and_index_are_read_from_the_state_database(
    tmp_path: Path,
) -> None:
    """Three runs of the model recorded as the daemon records them (one run per model): the
    last one's page charts each check's history; the index lists the model and its runs."""
    with StateStore(f"sqlite:///{tmp_path / 'state.db'}") as state:
        state.migrate()
        for index, covered in enumerate((990, 960, 930)):
            at = AT + index * timedelta(minutes=5)
            judged = results(tmp_path, observation(covered=covered))
            assert state.record_run(RunResult(f"run-{index}", at, at, at, (*judged.values(),)))
        page = Page(render_recorded(state, "run-2") or "")
        runs, latest = state.runs(), state.latest_by_check()
    assert "last 3 runs: from 93.0% to 99.0%" in page.row("fraud.coverage")
    assert page.headings[1] == "model fraud"
    listing = Page(render_index(index_runs(runs), index_views(latest), index_models(latest)))
    assert listing.table("models")["fraud"][0] == "fail"
    assert "views" not in listing.tables
    assert [row[2] for row in listing.tables["runs"][1:]] == ["model fraud"] * 3


# --- hostile names ------------------------------------------------------------------------------

XSS_MODEL = '"><svg onload=alert("model")>'
XSS_FEATURE = "<iframe src=javascript:alert(2)>"
XSS_OWNER = "<b>risk</b>"
XSS_LABEL = "<a href=javascript:alert(3)>x</a>"


def hostile_results() -> list[CheckResult]:
    """A model whose name, view, feature, owner and labels all carry markup: no check file can
    say them (their names are refused), so the model is built without validation, as a
    producer that skipped it would hand it over."""
    checks = (
        ModelCoverageCheck(kind="coverage", min=0.99, labels={"team": XSS_LABEL}),
        ModelFreshnessCheck(kind="freshness", max=timedelta(hours=1)),
        ModelNullRateCheck(kind="null_rate", max=0.001),
    )
    reference = f"{XSS_VIEW}:{XSS_FEATURE}"
    model = Model.model_construct(
        name=XSS_MODEL,
        features=(reference,),
        owner=XSS_OWNER,
        labels={XSS_LABEL: XSS_LABEL},
        serving_log=ServingLog.model_construct(store=XSS, path="logs"),
        requests=None,
        checks=checks,
    )
    view = ServedView(XSS_VIEW, ("user_id",), (XSS_FEATURE,), ("float",), timedelta(hours=1))
    observed = ModelObservation(
        source="serving_log",
        store=XSS,
        requests=100,
        covered=90,
        views={XSS_VIEW: ViewMisses(10, 10, MappingProxyType({XSS: 10}), Ages(90, 1, 2, 3, 4))},
        features={reference: FeatureMisses(null=10)},
        value_ages=Ages(90, 1, 2, 3, 4),
        request_ages=Ages(90, 1, 2, 3, 4),
        since=AT - timedelta(hours=1),
        until=AT,
    )
    return [judge(planned, observed) for planned in plan_model(ServedModel(model, (view,)))]


def test_names_features_owners_and_labels_of_a_model_render_as_text() -> None:
    run = replace(sample_run(), results=tuple(hostile_results()))
    html = render_report(run)
    page = Page(html)
    tags = {tag for tag, _ in page.tags}
    assert not tags & {"script", "img", "iframe", "svg", "b", "object"}  # no chart: no history
    assert [name for _, attrs in page.tags for name in attrs if name.startswith("on")] == []
    assert not [attrs for tag, attrs in page.tags if tag == "a" and "javascript" in str(attrs)]
    shown = "".join(page.text)
    for hostile in (XSS_MODEL, XSS_VIEW, XSS_FEATURE, XSS_OWNER, XSS, f"{XSS_LABEL}={XSS_LABEL}"):
        assert hostile in shown, hostile
    assert "<svg onload" not in html
    assert "&lt;iframe src=javascript:alert(2)&gt;" in html
    policies = [
        a["content"] for t, a in page.tags if a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert policies == ["default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                        "base-uri 'none'; form-action 'none'"]  # fmt: skip


def test_the_reports_index_lists_models_apart_from_views(tmp_path: Path) -> None:
    """The index reads the latest recorded results: the model in its own table, never as a
    view; its name escaped."""
    run = replace(model_run(tmp_path), results=(*model_run(tmp_path).results, *hostile_results()))
    latest = stored_results(run)
    views, models = index_views(latest), index_models(latest)
    assert [m.name for m in models] == [XSS_MODEL, "fraud"]
    assert "fraud" not in [v.name for v in views]
    assert "" not in [v.name for v in views]
    html = render_index((), views, models)
    page = Page(html)
    assert page.table("models")["fraud"][0] == "fail"
    assert XSS_MODEL in page.table("models")
    assert "<svg onload" not in html
