"""A model's serving log written by real Feast 0.67, and featmon's numbers over it.

Feast serves the feature service `fraud_v1` from Redis over a replay of four hours, and logs
every request with `FeatureStore.write_logged_features` (see `feast_serve` and `serving_plan`).
Redis is the online store of the test because it is the one closest to production and the one
whose statuses lie: it answers PRESENT, with event time 0, for an entity it does not have.

The truth is computed here, in plain Python, from the logged rows as pyarrow read them back from
Feast's Parquet files; featmon's `check` over the same files must report exactly it: the model's
coverage, its per-view breakdown, freshness quantiles and null rates. Every view alone covers
more than 95% of the requests and the model less: its P1 coverage check fails.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from checks.duration import format_duration
from tests.integration import plan, serving_plan
from tests.integration.conftest import REDIS_HOST, REDIS_PORT, flush_redis_db, run_feast
from tests.integration.test_feast_real import featmon

pytestmark = [pytest.mark.feast, pytest.mark.slow]

REDIS_DB = 12
"""The Redis database this module owns: flushed before the replay and after the tests."""
PROJECT = "featmon_logs"
SERVICE = "fraud_v1"
LOG_PATH = "data/logs/fraud_v1"
WINDOW = timedelta(hours=5)
"""The serving log's window in the test's check file: every step of the replay."""
MAX_FUTURE = timedelta(minutes=1)  # featmon's default clock-jitter tolerance
VIEWS: dict[str, tuple[tuple[str, ...], timedelta]] = {
    "user_stats": (("revenue", "orders"), timedelta(days=1)),
    "merchant_stats": (("avg_ticket", "is_high_risk"), timedelta(hours=2)),
    "user_merchant": (("txn_count_7d", "amount_sum_7d"), timedelta(days=1)),
}
"""What fraud_v1 is served, per view: its features and its max age (the view's TTL)."""
REASONS = ("absent", "null", "stale", "future")
PRESENT = 1  # Feast's FieldStatus.PRESENT
AGREEING: dict[int, set[str | None]] = {
    PRESENT: {None, "stale", "future"},
    2: {"null", "absent"},  # NULL_VALUE
    3: {"absent"},  # NOT_FOUND
    4: {"stale"},  # OUTSIDE_MAX_AGE
}
"""The judgments each Feast FieldStatus agrees with; INVALID (0) agrees with none."""


@dataclass(frozen=True)
class Replay:
    """The repository Feast served from, what it logged, and the scheduled time of the check."""

    repo: Path
    now: datetime
    feast_version: str
    schema: Mapping[str, str]
    files: tuple[str, ...]
    rows: tuple[Mapping[str, Any], ...]
    timings: Mapping[str, float]


@pytest.fixture(scope="module")
def replay(feast_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replay]:
    """One replay of four hours served and logged by Feast on Redis."""
    base = tmp_path_factory.mktemp("serving")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    end = now - timedelta(minutes=10)
    spec = {
        "project": PROJECT,
        "repo": str(base / "feature_repo"),
        "online_store": {
            "type": "redis",
            "connection_string": f"{REDIS_HOST}:{REDIS_PORT},db={REDIS_DB}",
        },
        "rows": {
            "user_stats": serving_plan.user_rows(end),
            "merchant_stats": serving_plan.merchant_rows(end),
            "user_merchant": serving_plan.pair_rows(end),
        },
        **serving_plan.replay(end),
        "out": str(base / "served.json"),
    }
    (base / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    flush_redis_db(REDIS_DB)
    try:
        command = ["-m", "tests.integration.feast_serve", str(base / "spec.json")]
        run_feast(feast_python, command, "serving and logging fraud_v1 with Feast")
        served = json.loads((base / "served.json").read_text(encoding="utf-8"))
        yield Replay(
            repo=base / "feature_repo",
            now=end + timedelta(minutes=5),
            feast_version=served["feast_version"],
            schema=served["schema"],
            files=tuple(served["files"]),
            rows=tuple(served["rows"]),
            timings=served["timings"],
        )
    finally:
        flush_redis_db(REDIS_DB)


# --- the truth, in plain Python over the logged rows ------------------------------------------

EPOCH_US = 0


@dataclass
class ViewTruth:
    uncovered: int = 0
    only: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    ages: list[float] = field(default_factory=list)


@dataclass
class Truth:
    """What featmon must measure over the requests of one window (DESIGN.md section 3)."""

    requests: int = 0
    covered: int = 0
    views: dict[str, ViewTruth] = field(default_factory=lambda: {v: ViewTruth() for v in VIEWS})
    features: dict[str, dict[str, int]] = field(default_factory=dict)
    value_ages: list[float] = field(default_factory=list)
    request_ages: list[float] = field(default_factory=list)
    status_disagreements: int = 0


def judge(row: Mapping[str, Any], view: str, feature: str) -> tuple[str | None, float | None]:
    """One served value: its miss reason (None: usable) and its age in seconds (None: none).
    No time, or time 0, is absent (Feast logs a value the store lacked so), then null (or NaN),
    then future (beyond max_future), then stale (older than the view's max age)."""
    column = f"{view}__{feature}"
    logged, at, value = row["__log_timestamp"], row[f"{column}__timestamp"], row[column]
    if at is None or at <= EPOCH_US:
        return "absent", None
    ahead = (at - logged) / 1_000_000 > MAX_FUTURE.total_seconds()
    age = None if ahead else max(0.0, (logged - at) / 1_000_000)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "null", age
    if age is None:
        return "future", None
    return ("stale" if age > VIEWS[view][1].total_seconds() else None), age


def truth(rows: tuple[Mapping[str, Any], ...], since: datetime, until: datetime) -> Truth:
    """The model's requests logged in [since, until), judged value by value."""
    low, high = since.timestamp() * 1_000_000, until.timestamp() * 1_000_000
    out = Truth()
    for row in rows:
        if not low <= row["__log_timestamp"] < high:
            continue
        out.requests += 1
        missed: dict[str, set[str]] = {view: set() for view in VIEWS}
        ages: list[float] = []
        for view, (features, _) in VIEWS.items():
            for feature in features:
                reason, age = judge(row, view, feature)
                status = row[f"{view}__{feature}__status"]
                out.status_disagreements += reason not in AGREEING.get(status, set())
                counts = out.features.setdefault(f"{view}:{feature}", dict.fromkeys(REASONS, 0))
                if reason is not None:
                    missed[view].add(reason)
                    counts[reason] += 1
                if age is not None:
                    ages.append(age)
                    out.views[view].ages.append(age)
        out.value_ages += ages
        out.request_ages += [max(ages)] if ages else []
        failing = [view for view, reasons in missed.items() if reasons]
        out.covered += not failing
        for view in failing:
            out.views[view].uncovered += 1
            out.views[view].only += len(failing) == 1
            for reason in missed[view]:
                out.views[view].reasons[reason] = out.views[view].reasons.get(reason, 0) + 1
    return out


def quantiles(ages: list[float]) -> dict[str, float | None]:
    """Nearest-rank p50, p90, p99 and the max; None each without ages."""
    ranks = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "max": 1.0}
    return {name: plan.nearest_rank(ages, q) if ages else None for name, q in ranks.items()}


# --- featmon ------------------------------------------------------------------------------------


def check_file(directory: Path, repo: Path) -> Path:
    """A config with one Parquet store over the repository and fraud_v1 over its serving log;
    its views declare only what the model reads of them."""
    (directory / "checks").mkdir(parents=True)
    config = {
        "stores": {"feast_files": {"type": "parquet", "root": str(repo)}},
        "checks": "checks/*.yaml",
        "reports": {"dir": str(directory / "reports")},
    }
    views = [
        {
            "name": "user_stats",
            "entity": "user_id",
            "ttl": "1d",
            "features": {"revenue": "double", "orders": "int64"},
        },
        {
            "name": "merchant_stats",
            "entity": "merchant_id",
            "ttl": "2h",
            "features": {"avg_ticket": "float32", "is_high_risk": "bool"},
        },
        {
            "name": "user_merchant",
            "entity": ["user_id", "merchant_id"],
            "ttl": "1d",
            "features": {"txn_count_7d": "int64", "amount_sum_7d": "double"},
        },
    ]
    model = {
        "name": SERVICE,
        "features": list(VIEWS),
        "serving_log": {
            "store": "feast_files",
            "path": LOG_PATH,
            "window": format_duration(WINDOW),
        },
        "checks": [
            {"kind": "coverage", "min": 0.95, "severity": "P1"},
            {"kind": "freshness", "quantile": "p99", "max": "2h", "severity": "P2"},
            {"kind": "freshness", "over": "requests", "max": "1d", "severity": "P3"},
            {"kind": "null_rate", "max": 0.01, "severity": "P2"},
        ],
    }
    text = yaml.safe_dump({"feature_views": views, "models": [model]}, sort_keys=False)
    (directory / "checks" / "fraud.yaml").write_text(text, encoding="utf-8")
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def model_results(config: Path, now: datetime) -> dict[str, dict[str, Any]]:
    """`featmon check --format json` at `now`: the model's results by check id."""
    moment = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    done = featmon(
        "check", "--config", str(config), "--format", "json", "--now", moment, "--no-state"
    )
    assert done.returncode in (0, 1, 2), done.stderr
    results = json.loads(done.stdout)["results"]
    return {r["check"]: r for r in results if r.get("model") == SERVICE}


def nonzero(counts: Mapping[str, int]) -> dict[str, int]:
    return {reason: n for reason, n in counts.items() if n}


# --- the tests ----------------------------------------------------------------------------------


def test_feast_wrote_its_own_log_schema(replay: Replay) -> None:
    """Feast 0.67's files: one per batch, join keys, value, `__timestamp` (declared seconds,
    stored as milliseconds) and int32 `__status` per feature, then the system columns."""
    assert replay.feast_version == "0.67.0"
    assert len(replay.files) == serving_plan.STEPS
    assert all(name.endswith("-0.parquet") for name in replay.files)
    expected = {"user_id": "int64", "merchant_id": "string"}
    for view, (features, _) in VIEWS.items():
        for feature in features:
            column = f"{view}__{feature}"
            assert replay.schema[f"{column}__timestamp"] == "timestamp[ms, tz=UTC]"
            assert replay.schema[f"{column}__status"] == "int32"
            expected[column] = replay.schema[column]
    assert replay.schema["__log_timestamp"] == "timestamp[us, tz=UTC]"
    assert (replay.schema["__log_date"], replay.schema["__request_id"]) == ("date32[day]", "string")
    assert len(replay.rows) == serving_plan.STEPS * serving_plan.REQUESTS_PER_STEP


def test_redis_statuses_lie_as_the_facts_say(replay: Replay) -> None:
    """A user Redis does not have is logged null at time 0 yet PRESENT, and a null revenue
    PRESENT too: the statuses cannot be trusted; values and times can. Every absent or null
    value disagrees with its status, and no other."""
    new = [r for r in replay.rows if r["user_id"] == serving_plan.NEW_USER]
    assert new
    for row in new:
        assert row["user_stats__revenue"] is None
        assert row["user_stats__revenue__timestamp"] == EPOCH_US
        assert row["user_stats__revenue__status"] == PRESENT
    nulls = [r for r in replay.rows if r["user_id"] in serving_plan.NULL_USERS]
    assert nulls
    assert {r["user_stats__revenue__status"] for r in nulls} == {PRESENT}
    assert all(r["user_stats__revenue__timestamp"] > EPOCH_US for r in nulls)
    found = truth(replay.rows, replay.now - WINDOW, replay.now)
    lying = sum(found.features[f][r] for f in found.features for r in ("absent", "null"))
    assert found.status_disagreements == lying


def test_every_view_covers_over_95_percent_and_the_model_under(replay: Replay) -> None:
    """The planted faults, as the truth sees them: one reason per view, on different requests."""
    found = truth(replay.rows, replay.now - WINDOW, replay.now)
    assert found.requests == len(replay.rows)
    assert {view: set(v.reasons) for view, v in found.views.items()} == {
        "user_stats": {"null", "absent"},
        "merchant_stats": {"stale"},
        "user_merchant": {"absent"},
    }
    for view in found.views.values():
        assert 1 - view.uncovered / found.requests > 0.95
    assert found.covered / found.requests < 0.95
    assert min(found.value_ages) >= 0


def test_featmon_measures_the_truth_over_feasts_log(replay: Replay, tmp_path: Path) -> None:
    """featmon's model coverage, per-view breakdown, freshness (over values and over requests)
    and null rates over the five hours equal the truth; the P1 coverage check fails."""
    results = model_results(check_file(tmp_path, replay.repo), replay.now)
    found = truth(replay.rows, replay.now - WINDOW, replay.now)
    coverage = results[f"{SERVICE}.coverage"]
    assert (coverage["status"], coverage["severity"]) == ("fail", "P1")
    details = coverage["details"]
    assert (details["covered"], details["requests"]) == (found.covered, found.requests)
    assert coverage["value"] == found.covered / found.requests
    assert details["status_disagreements"] == found.status_disagreements
    by_view = {v["view"]: v for v in details["views"]}
    for name, view in found.views.items():
        measured = by_view[name]
        assert (measured["uncovered"], measured["only"]) == (view.uncovered, view.only), name
        assert nonzero(measured["reasons"]) == view.reasons, name
        assert measured["age_p99"] == quantiles(view.ages)["p99"], name
    assert details["features"] == {
        f: nonzero(c) for f, c in found.features.items() if any(c.values())
    }
    freshness = results[f"{SERVICE}.freshness"]["details"]
    assert {q: freshness[q] for q in ("p50", "p90", "p99", "max")} == quantiles(found.value_ages)
    assert freshness["ages"] == len(found.value_ages)
    oldest = results[f"{SERVICE}.freshness.requests"]["details"]
    assert {q: oldest[q] for q in ("p50", "p90", "p99", "max")} == quantiles(found.request_ages)
    assert oldest["ages"] == len(found.request_ages)
    assert freshness["views"] == {
        name: {
            "p50": quantiles(v.ages)["p50"],
            "p99": quantiles(v.ages)["p99"],
            "max_age": VIEWS[name][1].total_seconds(),
        }
        for name, v in found.views.items()
    }
    for reference, counts in found.features.items():
        nulls = results[f"{SERVICE}.null_rate.{reference.replace(':', '.')}"]
        assert (nulls["details"]["absent"], nulls["details"]["null"]) == (
            counts["absent"],
            counts["null"],
        )
        assert nulls["value"] == (counts["absent"] + counts["null"]) / found.requests


def test_init_models_fraud_v1_over_its_log_and_check_agrees(replay: Replay, tmp_path: Path) -> None:
    """`featmon init --from-feast` on the repository: fraud_v1 is a model over Feast's file
    destination, read through the Parquet store over the repository; `featmon check` of the
    generated configuration measures the truth of the hour before the run (the default window).
    merchant_shadow, which logs nowhere, is only a commented hint."""
    out = tmp_path / "featmon"
    init = featmon("init", "--from-feast", str(replay.repo), "--out", str(out))
    assert init.returncode == 0, init.stderr
    (model,) = yaml.safe_load((out / "checks" / "fraud_v1.model.yaml").read_text())["models"]
    assert model["features"] == [
        "user_stats:revenue",
        "user_stats:orders",
        "merchant_stats",
        "user_merchant",
    ]
    assert model["serving_log"] == {"store": "feast_offline", "path": LOG_PATH}
    assert "note: feature service 'merchant_shadow': it has no logging_config" in init.stdout
    results = model_results(out / "config.yaml", replay.now)
    assert {r.split(".")[0] for r in results} == {SERVICE}
    found = truth(replay.rows, replay.now - timedelta(hours=1), replay.now)
    assert found.requests == serving_plan.REQUESTS_PER_STEP
    details = results[f"{SERVICE}.coverage"]["details"]
    assert (details["covered"], details["requests"]) == (found.covered, found.requests)
    assert results[f"{SERVICE}.coverage"]["status"] == "fail"
    freshness = results[f"{SERVICE}.freshness"]["details"]
    assert {q: freshness[q] for q in ("p50", "p90", "p99", "max")} == quantiles(found.value_ages)
