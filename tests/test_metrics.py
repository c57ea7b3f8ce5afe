"""The Prometheus metrics: what /metrics says about a state database filled by the demo (parsed
with prometheus_client's own text parser), and what the observer counts."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from checks.kinds import KINDS
from checks.result import RunResult, Status
from monitor.daemon.process import build_daemon
from monitor.daemon.recorder import StateHealth
from monitor.demo import PLANTED
from monitor.demo import store as planted
from monitor.metrics import Exposition, LiveState, Metrics, fixed_state, result_families
from monitor.state import StateStore, StoredResult, stored_results
from tests.model_fixtures import with_freshness_risk
from tests.sidecar import NOW, Demo, serve
from tests.test_daemon import FAST, MERCHANTS, USERS, free_port, write_checks, write_config

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def scraped(demo: Demo) -> Samples:
    with StateStore(demo.state_url) as state, serve(state) as url:
        text = httpx.get(f"{url}/metrics", timeout=10).text
    return parse(text)


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def names(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(labels) for metric, labels in samples if metric == name]


def test_coverage_is_the_demos_910_of_1000(scraped: Samples) -> None:
    """featmon_feature_coverage_ratio holds the latest coverage of each online view."""
    assert value(
        scraped, "featmon_feature_coverage_ratio", feature_view="user_stats", store="demo_online"
    ) == pytest.approx(0.91)
    assert value(
        scraped,
        "featmon_feature_coverage_ratio",
        feature_view="merchant_stats",
        store="demo_online",
    ) == pytest.approx(1.0)


def test_freshness_quantiles_are_the_planted_ages(scraped: Samples) -> None:
    """p99 and max of user_stats online are the 30 users three days stale; the stopped
    transactions job is 26 hours old offline."""
    three_days = timedelta(days=3).total_seconds()
    for quantile in ("0.99", "1"):
        assert (
            value(
                scraped,
                "featmon_feature_freshness_seconds",
                feature_view="user_stats",
                store="demo_online",
                quantile=quantile,
            )
            == three_days
        )
    assert (
        value(
            scraped,
            "featmon_feature_freshness_seconds",
            feature_view="transaction_features",
            store="demo_offline",
            quantile="1",
        )
        == timedelta(hours=26).total_seconds()
    )


def test_null_ratio_of_revenue_is_20_of_960(scraped: Samples) -> None:
    """featmon_feature_null_ratio is per feature: 20 null revenues among 960 users found."""
    assert value(
        scraped,
        "featmon_feature_null_ratio",
        feature_view="user_stats",
        feature="rolling_7d_revenue",
        store="demo_online",
    ) == pytest.approx(20 / 960)
    assert value(
        scraped,
        "featmon_feature_null_ratio",
        feature_view="transaction_features",
        feature="merchant_category",
        store="demo_offline",
    ) == pytest.approx(0.03)


def test_schema_drift_counts_added_removed_and_retyped(scraped: Samples) -> None:
    """transaction_features gained debug_blob, lost country and retyped amount_usd."""
    drift = {
        change: value(
            scraped,
            "featmon_schema_drift_columns",
            feature_view="transaction_features",
            store="demo_offline",
            change=change,
        )
        for change in ("added", "removed", "retyped")
    }
    assert drift == {"added": 1, "removed": 1, "retyped": 1}


def test_check_status_is_the_rank_of_each_latest_result(scraped: Samples) -> None:
    """0 pass, 1 warn, 2 fail, 3 error, for every check of the demo."""
    statuses = {
        labels["check"]: value(scraped, "featmon_check_status", **labels)
        for labels in names(scraped, "featmon_check_status")
    }
    assert len(statuses) == len(PLANTED)
    assert statuses["user_stats.coverage@online"] == 2
    assert statuses["user_stats.schema_drift@online"] == 1
    assert statuses["merchant_stats.freshness@online"] == 0
    assert statuses["transaction_features.null_rate.merchant_category@offline"] == 1


def test_last_run_timestamp_is_the_newest_scheduled_time(scraped: Samples) -> None:
    """featmon_last_run_timestamp_seconds is the latest run's scheduled time, per view."""
    for view in ("user_stats", "merchant_stats", "transaction_features"):
        assert (
            value(scraped, "featmon_last_run_timestamp_seconds", feature_view=view)
            == NOW.timestamp()
        )


def test_state_up_is_one_when_the_state_answers(scraped: Samples) -> None:
    """featmon_state_up is 1 after a successful read."""
    assert value(scraped, "featmon_state_up") == 1


def test_no_label_holds_a_url_or_a_secret(scraped: Samples) -> None:
    """Label values are names from config and check files, never URLs or credentials."""
    label_values = {v for _, labels in scraped for _, v in labels}
    assert not [v for v in label_values if "://" in v or "sqlite" in v or "@127." in v]


def stored(
    check: str, kind: str, status: Status, value: float | None, **details: object
) -> StoredResult:
    return StoredResult(
        run_id="r1",
        scheduled_at=NOW,
        check=check,
        kind=kind,
        feature_view="v",
        feature=None,
        store="s",
        target="online",
        status=status,
        severity="P1",
        value=value,
        threshold=MappingProxyType({}),
        sample_size=None,
        details=MappingProxyType(details),  # type: ignore[arg-type]  # test values are JSON
        labels=MappingProxyType({}),
    )


def samples_of(results: list[StoredResult]) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in result_families(results)
        for s in family.samples
    }


def test_an_error_result_shows_only_in_check_status() -> None:
    """A probe that could not measure exports status 3 and no coverage value."""
    found = samples_of([stored("v.coverage", "coverage", Status.ERROR, None, reason="down")])
    assert found == {
        (
            "featmon_check_status",
            frozenset({("check", "v.coverage"), ("feature_view", "v"), ("severity", "P1")}),
        ): 3.0,
        ("featmon_last_run_timestamp_seconds", frozenset({("feature_view", "v")})): NOW.timestamp(),
    }


def test_two_checks_on_one_series_export_the_first_only() -> None:
    """Two coverage checks of one view and store would be a duplicate series; the first wins."""
    found = samples_of(
        [
            stored("v.coverage.a", "coverage", Status.PASS, 0.5),
            stored("v.coverage.b", "coverage", Status.PASS, 0.9),
        ]
    )
    key = ("featmon_feature_coverage_ratio", frozenset({("feature_view", "v"), ("store", "s")}))
    assert found[key] == 0.5


def test_an_unreadable_state_sets_state_up_to_zero_and_keeps_the_counters() -> None:
    """A state outage never fails the scrape: state_up is 0 and observer counters remain."""
    registry = CollectorRegistry()
    with StateStore("postgresql+psycopg://featmon@127.0.0.1:1/none") as state:
        metrics = Metrics(registry, fixed_state(state))
        metrics.run_skipped("v", NOW)
        found = parse(Exposition(registry)(None)[0].decode())
    assert value(found, "featmon_state_up") == 0
    assert value(found, "featmon_runs_skipped_total", feature_view="v") == 1
    assert not names(found, "featmon_check_status")


def test_the_observer_counts_probes_errors_and_runs() -> None:
    """probe_finished feeds the duration histogram and the error counter; run_finished counts
    runs by status."""
    registry = CollectorRegistry()
    metrics = Metrics(registry, fixed_state(None))
    metrics.probe_finished("v", "s", 0.2, failed=False)
    metrics.probe_finished("v", "s", 3.0, failed=True)
    metrics.run_finished("v", RunResult("r", NOW, NOW, NOW, ()))
    found = parse(Exposition(registry)(None)[0].decode())
    assert value(found, "featmon_probe_duration_seconds_count", feature_view="v", store="s") == 2
    assert value(found, "featmon_probe_duration_seconds_sum", feature_view="v", store="s") == 3.2
    assert (
        value(
            found, "featmon_probe_duration_seconds_bucket", feature_view="v", store="s", le="0.25"
        )
        == 1
    )
    assert value(found, "featmon_probe_errors_total", feature_view="v", store="s") == 1
    assert value(found, "featmon_runs_total", feature_view="v", status="pass") == 1
    assert value(found, "featmon_runs_skipped_total", feature_view="v") == 0


def test_a_failed_reload_is_counted_and_a_success_clears_the_flag() -> None:
    """config_reloaded(False) increments the failures and zeroes last_reload_successful; a
    later success sets it back to 1. The error text is never exported."""
    registry = CollectorRegistry()
    metrics = Metrics(registry, fixed_state(None))
    metrics.config_reloaded(ok=False, error="checks/x.yaml: password=hunter2")
    failed = Exposition(registry)(None)[0].decode()
    assert value(parse(failed), "featmon_config_reload_failures_total") == 1
    assert value(parse(failed), "featmon_config_last_reload_successful") == 0
    assert "hunter2" not in failed
    metrics.config_reloaded(ok=True, error=None)
    after = parse(Exposition(registry)(None)[0].decode())
    assert value(after, "featmon_config_last_reload_successful") == 1
    assert value(after, "featmon_config_reload_failures_total") == 1


def test_each_registry_is_independent() -> None:
    """Two daemons in one process (tests) build their metrics on their own registries."""
    first, second = CollectorRegistry(), CollectorRegistry()
    Metrics(first, fixed_state(None)).run_skipped("v", NOW)
    Metrics(second, fixed_state(None))
    assert (
        value(
            parse(Exposition(first)(None)[0].decode()),
            "featmon_runs_skipped_total",
            feature_view="v",
        )
        == 1
    )
    assert not names(parse(Exposition(second)(None)[0].decode()), "featmon_runs_skipped_total")


def test_a_stored_result_of_an_unknown_kind_shows_only_in_check_status() -> None:
    """A result recorded by a version with a kind this one lacks never fails the scrape."""
    found = samples_of([stored("v.gone", "gone_kind", Status.PASS, 0.5)])
    assert {name for name, _ in found} == {
        "featmon_check_status",
        "featmon_last_run_timestamp_seconds",
    }


def test_a_null_ratio_without_a_feature_is_not_exported() -> None:
    """The null-ratio gauge is labelled by feature: a result without one has no series."""
    found = samples_of([stored("v.null_rate", "null_rate", Status.PASS, 0.1)])
    assert not [name for name, _ in found if name == "featmon_feature_null_ratio"]


# -- models ----------------------------------------------------------------------------------


def model_scrape(tmp_path: Path, configured: Collection[str] | None = None) -> Samples:
    """/metrics of a daemon whose last runs measured the model `fraud` (with a freshness_risk
    check, `tests.model_fixtures`) and one view check; `configured`: the check ids it runs
    now (default: all of them)."""
    run = RunResult("r1", NOW, NOW, NOW, tuple(with_freshness_risk(tmp_path)))
    measured = [*stored_results(run), stored("v.coverage", "coverage", Status.PASS, 0.5)]
    checks = {r.check for r in measured} if configured is None else configured
    live = LiveState(
        health=lambda: StateHealth(True), measured=lambda: measured, configured=lambda: checks
    )
    registry = CollectorRegistry()
    Metrics(registry, fixed_state(None), live)
    text = Exposition(registry)(None)[0].decode()
    openmetrics, _ = Exposition(registry)("application/openmetrics-text; version=1.0.0")
    parsed = openmetrics_families(openmetrics.decode())  # type: ignore[no-untyped-call]  # prometheus_client's OpenMetrics parser has no annotations
    assert list(parsed), "OpenMetrics parses it too"
    return parse(text)


def test_a_models_coverage_freshness_and_null_ratios_are_exported_by_model(
    tmp_path: Path,
) -> None:
    """The model's own gauges: coverage 930 of 1,000; freshness quantiles over values and over
    requests (label `over`); one null ratio per `view:feature`; the worst age predicted for
    the one view with a materialization interval (label `view`)."""
    found = model_scrape(tmp_path)
    assert value(found, "featmon_model_coverage_ratio", model="fraud") == pytest.approx(0.93)
    values = {
        q: value(found, "featmon_model_freshness_seconds", model="fraud", over="values", quantile=q)
        for q in ("0.5", "0.9", "0.99", "1")
    }
    assert values == {"0.5": 60, "0.9": 600, "0.99": 4000, "1": 9000}
    assert (
        value(
            found,
            "featmon_model_freshness_seconds",
            model="fraud",
            over="requests",
            quantile="0.99",
        )
        == 5000
    )
    nulls = {
        labels["feature"]: value(found, "featmon_model_null_ratio", **labels)
        for labels in names(found, "featmon_model_null_ratio")
    }
    assert nulls == pytest.approx(
        {"users:spend": 0.005, "users:visits": 0, "merchants:rating": 0, "pairs:txns": 0.03}
    )
    assert names(found, "featmon_model_freshness_risk_seconds") == [
        {"model": "fraud", "view": "merchants"}
    ]
    risk = value(found, "featmon_model_freshness_risk_seconds", model="fraud", view="merchants")
    assert risk == 600 + 1800


def test_a_models_checks_are_labelled_by_model_never_by_a_feature_view(tmp_path: Path) -> None:
    """The status and last-run gauges carry `model` for a model's checks, and a view's series
    keep exactly the labels they had; no gauge of views holds a series of the model."""
    found = model_scrape(tmp_path)
    statuses = names(found, "featmon_check_status")
    assert {"check": "fraud.coverage", "model": "fraud", "severity": "P1"} in statuses
    assert {"check": "v.coverage", "feature_view": "v", "severity": "P1"} in statuses
    assert value(found, "featmon_check_status", check="fraud.coverage", model="fraud",
                 severity="P1") == Status.FAIL.rank  # fmt: skip
    assert not [labels for labels in statuses if "model" in labels and "feature_view" in labels]
    assert value(found, "featmon_last_run_timestamp_seconds", model="fraud") == NOW.timestamp()
    assert names(found, "featmon_last_run_timestamp_seconds") == [
        {"feature_view": "v"},
        {"model": "fraud"},
    ]
    view_gauges = {g.name for kind in KINDS for g in kind.exported}
    assert [
        labels for metric, labels in found if metric in view_gauges and ("model", "fraud") in labels
    ] == []
    assert names(found, "featmon_feature_coverage_ratio") == [{"feature_view": "v", "store": "s"}]


def test_a_model_removed_by_a_reload_leaves_no_series(tmp_path: Path) -> None:
    """Results of checks the running configuration no longer has are not exported, though
    they are still the latest the daemon measured."""
    found = model_scrape(tmp_path, configured={"v.coverage"})
    assert [labels for _, labels in found if ("model", "fraud") in labels] == []
    assert value(found, "featmon_feature_coverage_ratio", feature_view="v", store="s") == 0.5


def test_a_view_removed_by_a_reload_leaves_no_series_in_the_daemons_metrics(
    tmp_path: Path,
) -> None:
    """The daemon's /metrics after a reload that removed user_stats: merchant_stats' series
    stay, user_stats' are gone though its results are still in the state database."""
    store = tmp_path / "store"
    planted.build(store, datetime.now(UTC))
    config = write_config(tmp_path, store, MERCHANTS + USERS)
    port = free_port()
    with config.open("a", encoding="utf-8") as file:
        file.write(f"http: {{listen: '127.0.0.1:{port}'}}\n")
    daemon = build_daemon(config, dataclasses.replace(FAST, watch_interval=timedelta(hours=1)))
    daemon.start()
    try:
        url = f"http://127.0.0.1:{port}/metrics"

        def views() -> set[str]:
            found = parse(httpx.get(url, timeout=5).text)
            return {labels["feature_view"] for labels in names(found, "featmon_check_status")}

        deadline = time.monotonic() + 15
        while views() != {"merchant_stats", "user_stats"}:
            assert time.monotonic() < deadline, "both views never showed in /metrics"
            time.sleep(0.2)
        write_checks(tmp_path, MERCHANTS)
        assert daemon.reload()
        assert views() == {"merchant_stats"}
    finally:
        daemon.stop(10)
    with StateStore(f"sqlite:///{tmp_path}/state.db") as state:
        assert "user_stats" in {r.feature_view for r in state.latest_by_check()}
