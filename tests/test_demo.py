"""The demo finds every fault it planted, with the numbers of the planted truth, and the healthy
parts pass. Expected numbers are derived by hand from the constants of monitor/demo/store.py."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from checks.result import CheckResult, RunResult
from checks.serde import to_object
from monitor.app import build_app
from monitor.cli.main import main
from monitor.demo import PLANTED, example_config, unexpected
from monitor.demo import store as planted
from monitor.loader import load
from monitor.runs.run import run_once

NOW = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
NOW_TEXT = "2026-11-26T06:00:00Z"
REPO = Path(__file__).resolve().parents[1]


def run_demo_config(directory: Path, now: datetime) -> RunResult:
    loaded = load(example_config(), {"FEATMON_DEMO_DIR": str(directory)})
    with build_app(loaded) as app:
        return run_once(app, now)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("demo")
    planted.build(directory, NOW)
    return directory


@pytest.fixture(scope="module")
def results(demo_dir: Path) -> dict[str, CheckResult]:
    run = run_demo_config(demo_dir, NOW)
    return {r.check: r for r in run.results}


def details(result: CheckResult) -> Mapping[str, object]:
    return to_object(result.details)


def test_the_example_config_is_the_top_level_file() -> None:
    """The demo runs exactly config.example.yaml of the repository."""
    assert example_config().read_bytes() == (REPO / "config.example.yaml").read_bytes()


def test_every_check_of_the_demo_has_the_planted_status(results: dict[str, CheckResult]) -> None:
    """Faults fail or warn as planted; everything healthy passes; nothing errors."""
    statuses = {check: r.status.value for check, r in results.items()}
    assert unexpected(statuses) == {}
    assert sorted(PLANTED.values()).count("fail") == 6
    assert set(PLANTED.values()) == {"pass", "warn", "fail"}  # nothing errors


def test_coverage_counts_missing_stale_and_null_users(results: dict[str, CheckResult]) -> None:
    """1000 users asked: 40 missing keys, 30 stale, 20 null revenue; 910 covered."""
    result = results["user_stats.coverage@online"]
    assert result.value == pytest.approx(0.91)
    assert result.sample_size == 1000
    info = details(result)
    assert info["covered"] == 910
    assert info["uncovered"] == {
        "missing_key": len(planted.MISSING_USERS),
        "undecodable": 0,
        "absent": 0,
        "null": len(planted.NULL_REVENUE_USERS),
        "future": 0,
        "stale": len(planted.STALE_USERS),
    }
    assert info["population"] == "offline"
    assert (info["asked"], info["found"], info["decode_errors"]) == (1000, 960, 0)
    low, high = info["ci_low"], info["ci_high"]
    assert isinstance(low, float)
    assert isinstance(high, float)
    assert low < 0.91 < high


def test_online_freshness_quantiles_match_the_planted_ages(results: dict[str, CheckResult]) -> None:
    """960 users found: 930 fresh (ages user % 50 minutes) and 30 three days old, so p99
    (rank 951 of 960) and max are three days."""
    result = results["user_stats.freshness@online"]
    fresh = sorted(
        planted.user_age(u).total_seconds()
        for u in planted.USERS
        if u not in planted.MISSING_USERS and u not in planted.STALE_USERS
    )
    ages = fresh + [planted.STALE_AGE.total_seconds()] * len(planted.STALE_USERS)
    info = details(result)
    assert info["p50"] == ages[480 - 1]  # nearest rank: ceil(0.5 * 960) = 480
    assert info["p90"] == ages[864 - 1]  # ceil(0.9 * 960) = 864
    assert info["p99"] == info["max"] == timedelta(days=3).total_seconds()
    assert result.value == timedelta(days=3).total_seconds()
    assert result.sample_size == 960


def test_null_rate_of_the_revenue_feature_is_20_of_960(results: dict[str, CheckResult]) -> None:
    """Null values are counted over the entities the online store has."""
    result = results["user_stats.null_rate.rolling_7d_revenue@online"]
    assert result.value == pytest.approx(20 / 960)
    assert details(result)["nulls"] == 20
    assert details(result)["rows"] == 960


def test_the_renamed_feature_is_online_schema_drift(results: dict[str, CheckResult]) -> None:
    """The orphaned field is reported as added; nothing declared is missing."""
    result = results["user_stats.schema_drift@online"]
    assert details(result)["added"] == [planted.ORPHAN_FEATURE]
    assert details(result)["removed"] == []
    assert result.value == 1


def test_the_stopped_transactions_job_is_26_hours_stale(results: dict[str, CheckResult]) -> None:
    result = results["transaction_features.freshness@offline"]
    assert result.value == planted.TRANSACTIONS_STOPPED.total_seconds()
    assert details(result)["newest_event_time"] == "2026-11-25T04:00:00Z"


def test_the_transactions_schema_changes_are_each_reported(
    results: dict[str, CheckResult],
) -> None:
    """amount_usd became text, country was dropped, debug_blob appeared."""
    info = details(results["transaction_features.schema_drift@offline"])
    assert info["added"] == ["debug_blob"]
    assert info["removed"] == ["country"]
    retyped = info["retyped"]
    assert isinstance(retyped, list)
    assert len(retyped) == 1
    assert isinstance(retyped[0], dict)
    assert retyped[0]["column"] == "amount_usd"
    assert retyped[0]["expected"] == "float"
    assert results["transaction_features.schema_drift@offline"].value == 3


def test_the_category_null_rate_is_exactly_3_percent(results: dict[str, CheckResult]) -> None:
    """90 of the 3000 transactions in the 7-day window have no category."""
    result = results["transaction_features.null_rate.merchant_category@offline"]
    assert (details(result)["nulls"], details(result)["rows"]) == (90, 3000)
    assert result.value == pytest.approx(0.03)


def test_the_healthy_merchant_offline_window_counts_four_slots(
    results: dict[str, CheckResult],
) -> None:
    """Rows every 30 minutes: 4 per merchant fall in the 2-hour window (T-2h, T]."""
    result = results["merchant_stats.null_rate.category@offline"]
    assert details(result)["rows"] == 4 * len(planted.MERCHANTS)
    assert result.value == 0


def test_the_model_fails_its_coverage_while_each_view_alone_passes(
    results: dict[str, CheckResult],
) -> None:
    """checkout_model's serving log: each view alone leaves fewer than 5% of the requests
    uncovered, the model 7.5%, because their misses fall on different requests; the null
    revenues Feast logged PRESENT are counted as disagreeing statuses."""
    coverage = details(results["checkout_model.coverage"])
    requests = planted.LOGGED_REQUESTS
    absent = requests // planted.LOG_ABSENT_USER_EVERY
    stale = requests // planted.LOG_STALE_MERCHANT_EVERY[1]
    nulls = requests // planted.LOG_NULL_REVENUE_EVERY[1]
    views = {v["view"]: v for v in coverage["views"]}  # type: ignore[attr-defined]  # JSON list
    assert views["user_stats"]["uncovered"] == views["user_stats"]["only"] == absent + nulls
    assert views["merchant_stats"]["uncovered"] == views["merchant_stats"]["only"] == stale
    assert views["merchant_stats"]["reasons"]["stale"] == stale
    for view in views.values():
        assert 1 - view["uncovered"] / requests > 0.95
    assert (coverage["requests"], coverage["covered"]) == (
        requests,
        requests - absent - nulls - stale,
    )
    assert results["checkout_model.coverage"].value == 0.925
    assert coverage["status_disagreements"] == nulls
    freshness = results["checkout_model.freshness.requests"]
    assert freshness.value is not None
    assert abs(freshness.value - planted.LOG_STALE_MERCHANT_AGE.total_seconds()) < 2


def test_featmon_demo_prints_json_writes_the_report_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The main job end to end: exit code 0 (it found every planted fault, which the JSON
    shows as the run's status `fail`), a JSON document, an HTML report."""
    code = main(["demo", "--dir", str(tmp_path), "--now", NOW_TEXT, "--format", "json"])
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert code == 0
    assert document["status"] == "fail"
    assert document["scheduled_at"] == NOW_TEXT
    assert len(document["results"]) == len(PLANTED)
    reports = sorted((tmp_path / "reports").glob("*.html"))
    assert [p.name for p in reports][-1] == "latest.html"
    assert document["run_id"] in {p.stem for p in reports}


def test_a_demo_that_misses_a_planted_fault_says_which_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Were a planted fault not found (here: planted as passing), the demo exits 2 and names it."""
    planted = {**PLANTED, "user_stats.coverage@online": "pass"}
    monkeypatch.setattr("monitor.demo.PLANTED", planted)
    code = main(["demo", "--dir", str(tmp_path), "--now", NOW_TEXT, "--no-state"])
    err = capsys.readouterr().err
    assert code == 2
    assert "featmon demo: user_stats.coverage@online is fail, planted pass" in err


def test_check_after_demo_gives_the_same_results(
    demo_dir: Path, results: dict[str, CheckResult]
) -> None:
    """`featmon check --config config.example.yaml` measures the demo store again the same way."""
    again = run_demo_config(demo_dir, NOW)
    assert {r.check: (r.status, r.value) for r in again.results} == {
        c: (r.status, r.value) for c, r in results.items()
    }


def test_one_app_runs_again_and_again_without_errors(demo_dir: Path) -> None:
    """The daemon reuses its stores: repeated runs on worker threads never see a connection
    that another thread's pool closed (DuckDB refuses shared connections)."""
    loaded = load(example_config(), {"FEATMON_DEMO_DIR": str(demo_dir)})
    with build_app(loaded, with_state=False) as app:
        for minutes in range(0, 40, 10):
            run = run_once(app, NOW + timedelta(minutes=minutes))
            assert run.counts()["error"] == 0, [to_object(r.details) for r in run.results]
