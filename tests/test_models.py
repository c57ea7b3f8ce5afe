"""Models in check files: declared, resolved against the views of every file, planned, judged
from one observation of their requests, and serialized like any result."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.lifecycle import check_labels
from alerts.model import subject_of
from checks.observation import Ages, FeatureMisses, ModelObservation, ProbeFailure, ViewMisses
from checks.result import (
    CheckResult,
    ErrorDetails,
    ModelCoverageDetails,
    ModelFreshnessDetails,
    ModelNullRateDetails,
    Status,
)
from checks.serde import from_json, to_json
from checks.served_judge import judge
from monitor.loader import LoadedModel, load
from tests.test_loader import CONFIG, problems, write

AT = datetime(2026, 12, 1, 12, tzinfo=UTC)

VIEWS = """\
feature_views:
  - name: users
    entity: user_id
    ttl: 1d
    features: {spend: float, visits: int64}
    online: {store: online}
  - name: merchants
    entity: merchant_id
    ttl: 2h
    features: {rating: float}
    online: {store: online}
  - name: pairs
    entity: [user_id, merchant_id]
    ttl: 7d
    features: {txns: int64}
    online: {store: online}
"""

MODEL = """\
models:
  - name: fraud
    features: [users, "merchants:rating", "pairs:txns"]
    max_age: {merchants: 1h}
    owner: risk-team
    labels: {tier: gold}
    serving_log: {store: lake, path: logs/fraud, window: 2h}
    checks:
      - {kind: coverage, min: 0.95, warn: 0.97, severity: P1}
      - {kind: freshness, quantile: p99, max: 1h}
      - {kind: freshness, over: requests, max: 2h}
      - {kind: null_rate, max: 0.01}
"""


def loaded_model(tmp_path: Path, model: str = MODEL) -> LoadedModel:
    files = {"config.yaml": CONFIG, "checks/views.yaml": VIEWS, "checks/models.yaml": model}
    return load(write(tmp_path, files), {}).models[0]


def test_a_model_uses_views_of_other_files_and_carries_every_join_key(tmp_path: Path) -> None:
    model = loaded_model(tmp_path)
    served = model.served
    assert [v.name for v in served.views] == ["users", "merchants", "pairs"]
    assert served.join_keys == ("user_id", "merchant_id")
    assert served.references == (
        "users:spend",
        "users:visits",
        "merchants:rating",
        "pairs:txns",
    )
    ages = {v.name: v.max_age for v in served.views}
    assert ages == {"users": timedelta(days=1), "merchants": timedelta(hours=1),
                    "pairs": timedelta(days=7)}  # fmt: skip
    assert served.views[0].column("spend") == "users__spend"
    assert [p.id for p in model.planned] == [
        "fraud.coverage",
        "fraud.freshness",
        "fraud.freshness.requests",
        "fraud.null_rate.users.spend",
        "fraud.null_rate.users.visits",
        "fraud.null_rate.merchants.rating",
        "fraud.null_rate.pairs.txns",
    ]
    assert model.planned[0].labels == {"tier": "gold", "owner": "risk-team", "model": "fraud"}
    assert model.key == "model:fraud"
    assert model.file.endswith("checks/models.yaml")
    assert model.line == 2


def test_a_model_with_unknown_views_and_features_is_refused_at_each_place(
    tmp_path: Path,
) -> None:
    bad = """\
models:
  - name: fraud
    features: [users, "nope", "merchants:stars"]
    max_age: {pairs: 1h}
    requests: {ids_file: requests.csv}
    checks:
      - {kind: null_rate, feature: "users:age", max: 0.1}
"""
    found = problems(
        tmp_path, {"config.yaml": CONFIG, "checks/v.yaml": VIEWS, "checks/m.yaml": bad}
    )
    assert found == [
        "checks/m.yaml:3: models[0].features[1]: expected a declared feature view "
        "['merchants', 'pairs', 'users'], found 'nope'",
        "checks/m.yaml:3: models[0].features[2]: expected a feature of merchants ['rating'], "
        "found 'stars'",
        "checks/m.yaml:4: models[0].max_age.pairs: expected a view the model uses ['users'], "
        "found 'pairs'",
        "checks/m.yaml:7: models[0].checks[0].feature: expected a feature the model is served "
        "['users:spend', 'users:visits'], found 'users:age'",
    ]


def test_a_model_needs_one_source_and_an_offline_store_for_its_log(tmp_path: Path) -> None:
    neither = "models:\n  - {name: m, features: [users]}\n"
    wrong_store = (
        "models:\n  - {name: m, features: [users], serving_log: {store: online, path: x}}\n"
    )
    files = {"config.yaml": CONFIG, "checks/v.yaml": VIEWS}
    assert problems(tmp_path, {**files, "checks/m.yaml": neither}) == [
        "checks/m.yaml:2: models[0]: expected exactly one of `serving_log` or `requests`, "
        "found neither"
    ]
    assert problems(tmp_path, {**files, "checks/m.yaml": wrong_store}) == [
        "checks/m.yaml:2: models[0].serving_log.store: expected one of the offline stores "
        "['lake', 'warehouse'], found 'online' of type feast-sqlite"
    ]


def test_a_model_name_and_its_check_ids_are_unique(tmp_path: Path) -> None:
    twice = MODEL + MODEL.removeprefix("models:\n")
    found = problems(
        tmp_path, {"config.yaml": CONFIG, "checks/v.yaml": VIEWS, "checks/m.yaml": twice}
    )
    assert found == [
        "checks/m.yaml:13: models[1].name: expected a unique model name, found 'fraud' again "
        "(first at checks/m.yaml:2)"
    ]


def observation(**changes: object) -> ModelObservation:
    """1,000 requests: 930 covered; merchants alone misses 40 (stale), pairs alone 20 (absent),
    both 10; 5 requests were served a null spend."""
    fields: dict[str, object] = {
        "source": "serving_log",
        "store": "lake",
        "requests": 1000,
        "covered": 930,
        "views": {
            "users": ViewMisses(5, 0, {"null": 5}, Ages(2000, 60, 120, 300, 400)),
            "merchants": ViewMisses(50, 40, {"stale": 50}, Ages(1000, 600, 3000, 5000, 9000)),
            "pairs": ViewMisses(30, 20, {"absent": 30}, Ages(970, 10, 20, 30, 40)),
        },
        "features": {
            "users:spend": FeatureMisses(null=5),
            "users:visits": FeatureMisses(),
            "merchants:rating": FeatureMisses(stale=50),
            "pairs:txns": FeatureMisses(absent=30),
        },
        "value_ages": Ages(3970, 60, 600, 4000, 9000),
        "request_ages": Ages(1000, 600, 3000, 5000, 9000),
        "since": AT - timedelta(hours=2),
        "until": AT,
        "status_disagreements": 30,
    }
    return ModelObservation(**(fields | changes))  # type: ignore[arg-type]  # the test's own fields


def results(tmp_path: Path, observed: ModelObservation | ProbeFailure) -> dict[str, CheckResult]:
    return {p.id: judge(p, observed) for p in loaded_model(tmp_path).planned}


def test_coverage_is_over_requests_and_names_what_each_view_costs(tmp_path: Path) -> None:
    coverage = results(tmp_path, observation())["fraud.coverage"]
    assert (coverage.status, coverage.value, coverage.sample_size) == (Status.FAIL, 0.93, 1000)
    assert (coverage.model, coverage.feature_view, coverage.subject) == (
        "fraud",
        None,
        "model:fraud",
    )
    assert (coverage.store, coverage.target, coverage.severity) == ("lake", "serving_log", "P1")
    details = coverage.details
    assert isinstance(details, ModelCoverageDetails)
    assert [(v.view, v.uncovered, v.only) for v in details.views] == [
        ("merchants", 50, 40),
        ("pairs", 30, 20),
        ("users", 5, 0),
    ]
    assert details.views[0].max_age_seconds == 3600
    assert details.interval is None  # every logged request: exact
    assert dict(details.features) == {
        "users:spend": {"null": 5},
        "merchants:rating": {"stale": 50},
        "pairs:txns": {"absent": 30},
    }
    assert details.status_disagreements == 30


def test_freshness_over_values_or_requests_and_null_rates_per_feature(tmp_path: Path) -> None:
    judged = results(tmp_path, observation())
    values, requests = judged["fraud.freshness"], judged["fraud.freshness.requests"]
    assert (values.value, values.status) == (4000, Status.FAIL)
    assert (requests.value, requests.status) == (5000, Status.PASS)  # p99 5000 s < 2h
    assert isinstance(values.details, ModelFreshnessDetails)
    assert values.details.views["merchants"] == {"p50": 600, "p99": 5000, "max_age": 3600}
    spend = judged["fraud.null_rate.users.spend"]
    assert (spend.value, spend.status, spend.feature) == (0.005, Status.PASS, "users:spend")
    txns = judged["fraud.null_rate.pairs.txns"]
    assert (txns.value, txns.status) == (0.03, Status.FAIL)
    assert isinstance(txns.details, ModelNullRateDetails)
    assert (txns.details.absent, txns.details.null) == (30, 0)


def test_no_requests_or_a_failed_probe_is_an_error_never_a_pass(tmp_path: Path) -> None:
    empty = observation(requests=0, covered=0, views={}, features={})
    for result in results(tmp_path, empty).values():
        assert result.status is Status.ERROR
        assert isinstance(result.details, ErrorDetails)
        assert "no requests in the serving log since 2026-12-01 10:00Z" in result.details.reason
    failed = ProbeFailure("lake", "model:fraud", "store 'lake': no file")
    assert {r.status for r in results(tmp_path, failed).values()} == {Status.ERROR}


def test_a_sampled_observation_gives_intervals(tmp_path: Path) -> None:
    sampled = observation(
        source="requests", asked=1000, population="ids_file", since=None, until=None
    )
    coverage = results(tmp_path, sampled)["fraud.coverage"]
    assert isinstance(coverage.details, ModelCoverageDetails)
    assert coverage.details.interval is not None
    assert coverage.details.interval.low < 0.93 < coverage.details.interval.high
    doc = to_json(coverage)
    assert isinstance(doc, dict)
    assert isinstance(doc["details"], dict)
    assert "since" not in doc["details"]  # a sample has no window
    assert (doc["details"]["asked"], doc["details"]["population"]) == (1000, "ids_file")
    assert from_json(CheckResult, doc) == coverage


def test_a_model_result_reads_back_from_its_json_and_alerts_by_model(tmp_path: Path) -> None:
    for result in results(tmp_path, observation()).values():
        doc = to_json(result)
        assert isinstance(doc, dict)
        assert doc["model"] == "fraud"
        assert doc["feature_view"] is None
        assert from_json(CheckResult, json.loads(json.dumps(doc))) == result
    coverage = results(tmp_path, observation())["fraud.coverage"]
    labels = check_labels(coverage)
    assert labels["model"] == "fraud"
    assert labels["owner"] == "risk-team"
    assert "feature_view" not in labels
    assert subject_of(labels) == "model:fraud"


def test_featmon_check_runs_models_and_reports_them_in_json(tmp_path: Path) -> None:
    """A serving log that is not there is an error result for every check of the model."""
    from monitor.app import build_app  # noqa: PLC0415 - the app opens stores
    from monitor.runs.run import run_once  # noqa: PLC0415

    files = {"config.yaml": CONFIG, "checks/views.yaml": VIEWS, "checks/models.yaml": MODEL}
    app = build_app(load(write(tmp_path, files), {}))
    try:
        run = run_once(app, AT)
    finally:
        app.close()
    model_results = [r for r in run.results if r.model == "fraud"]
    assert len(model_results) == 7
    assert {r.status for r in model_results} == {Status.ERROR}


@pytest.mark.parametrize("quantile", ["p50", "p90", "p99", "max"])
def test_freshness_judges_the_quantile_it_names(tmp_path: Path, quantile: str) -> None:
    model = MODEL.replace("{kind: freshness, quantile: p99, max: 1h}",
                          f"{{kind: freshness, quantile: {quantile}, max: 1h}}")  # fmt: skip
    planned = loaded_model(tmp_path, model).planned[1]
    wanted = {"p50": 60, "p90": 600, "p99": 4000, "max": 9000}[quantile]
    assert judge(planned, observation()).value == wanted


def test_freshness_risk_predicts_the_worst_age_from_the_materialization_interval(
    tmp_path: Path,
) -> None:
    """merchants is materialized hourly and served at a median age of 10 minutes: just before
    each refresh its values will be about 40 minutes old, past the model's 30 minutes, though
    every value served now is younger than that (a warning, before the peak does it)."""
    views = VIEWS.replace("    ttl: 2h\n", "    ttl: 2h\n    materialized_every: 1h\n")
    model = MODEL.replace("max_age: {merchants: 1h}", "max_age: {merchants: 30m}").replace(
        "      - {kind: null_rate, max: 0.01}\n", "      - {kind: freshness_risk}\n"
    )
    files = {"config.yaml": CONFIG, "checks/views.yaml": views, "checks/models.yaml": model}
    planned = load(write(tmp_path, files), {}).models[0].planned
    risk = [p for p in planned if p.kind == "freshness_risk"]
    assert [p.id for p in risk] == ["fraud.freshness_risk.merchants"]  # the one view with it
    result = judge(risk[0], observation())
    assert (result.value, result.status) == (600 + 1800, Status.WARN)
    assert result.threshold.warn == 1800


def test_freshness_risk_needs_a_view_with_a_materialization_interval(tmp_path: Path) -> None:
    model = MODEL.replace(
        "      - {kind: null_rate, max: 0.01}\n", "      - {kind: freshness_risk}\n"
    )
    found = problems(
        tmp_path, {"config.yaml": CONFIG, "checks/v.yaml": VIEWS, "checks/m.yaml": model}
    )
    assert found == [
        "checks/m.yaml:12: models[0].checks[3]: expected a view of the model with "
        "`materialized_every` for freshness_risk, found none among ['users', 'merchants', 'pairs']"
    ]


def test_a_serving_log_on_sqlite_is_refused_at_load(tmp_path: Path) -> None:
    """SQLite has no discrete percentile: said when the configuration is read, not at each run."""
    model = MODEL.replace("serving_log: {store: lake, path: logs/fraud, window: 2h}",
                          "serving_log: {store: warehouse, table: fraud_log}")  # fmt: skip
    found = problems(
        tmp_path, {"config.yaml": CONFIG, "checks/v.yaml": VIEWS, "checks/m.yaml": model}
    )
    assert found == [
        "checks/m.yaml:7: models[0].serving_log.store: expected a PostgreSQL, DuckDB or Parquet "
        "store for a serving log (its quantiles need a discrete percentile), found 'warehouse' "
        "on sqlite"
    ]


def test_a_failing_store_names_the_probe_alert_of_a_request_sample(tmp_path: Path) -> None:
    """A request sample's view store failing: the error results name that store, so the probe
    alert says which store cannot be read (an ids file has no store of its own)."""
    sampled = MODEL.replace(
        "serving_log: {store: lake, path: logs/fraud, window: 2h}", "requests: {ids_file: r.csv}"
    )
    files = {"config.yaml": CONFIG, "checks/views.yaml": VIEWS, "checks/models.yaml": sampled}
    planned = load(write(tmp_path, files), {}).models[0].planned
    failed = judge(planned[0], ProbeFailure("online", "model:fraud", "store 'online': down"))
    assert (failed.status, failed.store) == (Status.ERROR, "online")
    assert judge(planned[0], observation(source="requests", store="")).store == ""


def test_a_model_whose_checks_are_all_off_is_not_a_subject_so_its_alerts_retire(
    tmp_path: Path,
) -> None:
    """A reload retires the alerts of every subject that is not run: a model (or view) whose
    every check is switched off never runs again, so its alerts would never resolve."""
    from monitor.daemon.jobs import subjects  # noqa: PLC0415 - the daemon's jobs

    off = (
        MODEL.replace("severity: P1}", "severity: P1, enabled: false}")
        .replace("max: 1h}", "max: 1h, enabled: false}")
        .replace("max: 2h}", "max: 2h, enabled: false}")
        .replace("max: 0.01}", "max: 0.01, enabled: false}")
    )
    files = {"config.yaml": CONFIG, "checks/views.yaml": VIEWS, "checks/models.yaml": off}
    loaded = load(write(tmp_path, files), {})
    assert loaded.models[0].planned == ()
    assert "model:fraud" not in subjects(loaded)
    on = {"config.yaml": CONFIG, "checks/views.yaml": VIEWS, "checks/models.yaml": MODEL}
    assert "model:fraud" in subjects(load(write(tmp_path, on), {}))
