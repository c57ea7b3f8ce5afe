"""A model's request sample, probed now: requests drawn from a CSV file or a query, each view
read once in its own online store (Redis and Feast's SQLite store here), every request judged by
the serving log's rules at the scheduled time."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from checks.errors import ConfigError
from checks.model import FeatureView
from checks.observation import Ages, FeatureMisses, ModelObservation, ProbeFailure, ViewMisses
from checks.requests import Sample, judge_value
from checks.requests import observe as judged_requests
from checks.result import Status
from checks.serde import to_object
from checks.served import Model, resolve
from checks.stats import wilson
from monitor.app import App, build_app
from monitor.loader import LoadedModel, load
from monitor.runs import requests
from monitor.runs.served import probe_model
from tests.builders import AT, entity, null, undecodable, value
from tests.redis_fixtures import REDIS_URL, Planter, free_port
from tests.request_fixtures import (
    FAULTS,
    NOW,
    REQUESTS,
    Planted,
    model,
    plant,
    write_files,
)

SAMPLE = Sample("", "ids_file", 10)


@pytest.fixture
def planted(redis_planter: Planter, tmp_path: Path) -> Planted:
    return plant(redis_planter, tmp_path, FAULTS, REQUESTS)


def write_config(root: Path, planted: Planted, source: str, redis: str = REDIS_URL) -> Path:
    """config.yaml and one check file below `root`, with the model `fraud` over a request
    sample (`source`: the body of its `requests:`); the requests in a CSV file beside the
    check file and in a table of a warehouse."""
    warehouse = root / "warehouse.db"
    with sqlite3.connect(warehouse) as conn:
        conn.execute("CREATE TABLE requests (user_id INTEGER, merchant_id TEXT, at TEXT)")
        conn.executemany("INSERT INTO requests VALUES (?, ?, '')", REQUESTS)
    conn.close()
    (root / "checks").mkdir(exist_ok=True)
    ids = "at,merchant_id,user_id\n" + "".join(f"x,{m},{u}\n" for u, m in REQUESTS)
    (root / "checks" / "requests.csv").write_text(ids, encoding="utf-8")
    return write_files(root, planted, model("fraud", f"requests: {{{source}}}"), redis)


def opened(config: Path) -> tuple[App, LoadedModel]:
    app = build_app(load(config, {}), with_state=False)
    (model,) = app.loaded.models
    return app, model


def truth(store: str, population: str, asked: int) -> ModelObservation:
    """The planted faults, counted by hand (ages in seconds at NOW).

    user_stats (revenue, orders): ages 600 for user 1, 1800 user 2, 3600 user 4 (its null
    revenue has a time, so an age), 172800 user 5 (stale); user 3 absent.
    merchant_stats (risk; max age 2h): 300 m1, 10800 m2 (stale), m3 future (no age).
    user_merchant (spend): 1200 for every pair; (5, m1) absent, (1, m2) NaN.
    """
    minutes = 60.0
    return ModelObservation(
        source="requests",
        store=store,
        requests=9,
        covered=4,  # (1, m1) three times and (2, m1)
        views={
            # (3, m1) absent and (4, m1) null: user_stats alone; (5, m1) stale: with the pair.
            # Ages of 16 values: 600 x8, 1800 x4, 3600 x2, 172800 x2.
            "user_stats": ViewMisses(
                uncovered=3,
                only=2,
                reasons={"absent": 1, "null": 1, "stale": 1, "future": 0},
                ages=Ages(16, 10 * minutes, 2880 * minutes, 2880 * minutes, 2880 * minutes),
            ),
            # (1, m2) stale, with the pair's NaN; (2, m3) future, alone.
            # Ages of 8 values: 300 x7 (m1), 10800 (m2).
            "merchant_stats": ViewMisses(
                uncovered=2,
                only=1,
                reasons={"absent": 0, "null": 0, "stale": 1, "future": 1},
                ages=Ages(8, 5 * minutes, 180 * minutes, 180 * minutes, 180 * minutes),
            ),
            # (5, m1) absent and (1, m2) NaN, each with another view. 8 values of 1200.
            "user_merchant": ViewMisses(
                uncovered=2,
                only=0,
                reasons={"absent": 1, "null": 1, "stale": 0, "future": 0},
                ages=Ages(8, 20 * minutes, 20 * minutes, 20 * minutes, 20 * minutes),
            ),
        },
        features={
            "user_stats:revenue": FeatureMisses(absent=1, null=1, stale=1),
            "user_stats:orders": FeatureMisses(absent=1, stale=1),
            "merchant_stats:risk": FeatureMisses(stale=1, future=1),
            "user_merchant:spend": FeatureMisses(absent=1, null=1),
        },
        # 32 values: 300 x7, 600 x8, 1200 x8, 1800 x4, 3600 x2, 10800, 172800 x2: the 16th
        # is 1200, the 29th 3600, the 32nd 172800.
        value_ages=Ages(32, 20 * minutes, 60 * minutes, 2880 * minutes, 2880 * minutes),
        # The oldest value of each request: 1200 x3 (1, m1), 1800 (2, m1), 1200 (3, m1), 3600
        # (4, m1), 172800 (5, m1), 10800 (1, m2), 1800 (2, m3): the 5th of 9 is 1800.
        request_ages=Ages(9, 30 * minutes, 2880 * minutes, 2880 * minutes, 2880 * minutes),
        asked=asked,
        population=population,
    )


def test_planted_faults_over_an_ids_file(tmp_path: Path, planted: Planted) -> None:
    """Every number of the observation, from a CSV whose header names the join keys among
    other columns: every request drawn (the sample asks for more than the file holds)."""
    config = write_config(tmp_path, planted, "ids_file: requests.csv, sample: 50")
    app, model = opened(config)
    with app:
        observation = requests.observe(model, app.stores, NOW, random.Random(1))
    assert observation == truth("", "ids_file", 50)


def test_planted_faults_over_a_query(tmp_path: Path, planted: Planted) -> None:
    """The same requests read by a query on an offline store: the same observation."""
    source = "store: warehouse, query: 'SELECT merchant_id, user_id FROM requests', sample: 9"
    app, model = opened(write_config(tmp_path, planted, source))
    with app:
        observation = requests.observe(model, app.stores, NOW)
    assert observation == truth("warehouse", "query", 9)


def test_the_model_checks_are_judged_from_the_sample(tmp_path: Path, planted: Planted) -> None:
    """Coverage 4/9 fails its P1 check with the sample's Wilson interval; the oldest value of
    each request has a p99 of 2 days (not over 1 day: fails); revenue served no value to 2 of
    9 requests (absent for user 3, null for user 4)."""
    app, model = opened(write_config(tmp_path, planted, "ids_file: requests.csv, sample: 9"))
    with app:
        coverage, freshness, null_rate = probe_model(model, app.stores, NOW)
    assert (coverage.status, coverage.value, coverage.sample_size) == (Status.FAIL, 4 / 9, 9)
    details = to_object(coverage.details)
    interval = wilson(4, 9)
    assert (details["ci_low"], details["ci_high"]) == (interval.low, interval.high)
    assert (details["source"], details["asked"], details["population"]) == (
        "requests",
        9,
        "ids_file",
    )
    assert (freshness.status, freshness.value) == (Status.FAIL, 172800.0)
    assert (null_rate.status, null_rate.value) == (Status.FAIL, 2 / 9)


def test_a_store_that_cannot_be_read_makes_the_whole_observation_an_error(
    tmp_path: Path, planted: Planted
) -> None:
    """Redis down: no partial observation from the SQLite view, a failure naming the store
    and the view, and every check of the model an error."""
    down = f"redis://127.0.0.1:{free_port()}/0"
    config = write_config(tmp_path, planted, "ids_file: requests.csv", redis=down)
    app, model = opened(config)
    with app:
        observation = requests.observe(model, app.stores, NOW)
        results = probe_model(model, app.stores, NOW)
    assert isinstance(observation, ProbeFailure)
    assert (observation.store, observation.feature_view) == ("redis", "model:fraud")
    assert "reading view user_stats for model fraud failed" in observation.reason
    assert {r.status for r in results} == {Status.ERROR}
    assert all("reading view user_stats" in str(to_object(r.details)["reason"]) for r in results)


def test_a_query_that_fails_names_the_model_and_the_store(tmp_path: Path, planted: Planted) -> None:
    source = "store: warehouse, query: 'SELECT user_id FROM requests'"  # no merchant_id
    app, model = opened(write_config(tmp_path, planted, source))
    with app:
        observation = requests.observe(model, app.stores, NOW)
    assert isinstance(observation, ProbeFailure)
    assert observation.store == "warehouse"
    assert "sampling the requests of model fraud failed" in observation.reason


def test_a_missing_ids_file_is_an_error_naming_it(tmp_path: Path, planted: Planted) -> None:
    app, model = opened(write_config(tmp_path, planted, "ids_file: gone.csv"))
    with app:
        observation = requests.observe(model, app.stores, NOW)
    assert isinstance(observation, ProbeFailure)
    assert "cannot read the ids file" in observation.reason
    assert "gone.csv" in observation.reason


def test_an_empty_sample_is_an_error_not_a_pass(tmp_path: Path, planted: Planted) -> None:
    """A file with a header and no requests: nothing measured, every check an error."""
    config = write_config(tmp_path, planted, "ids_file: empty.csv")
    (tmp_path / "checks" / "empty.csv").write_text("user_id,merchant_id\n", encoding="utf-8")
    app, model = opened(config)
    with app:
        observation = requests.observe(model, app.stores, NOW)
        results = probe_model(model, app.stores, NOW)
    assert isinstance(observation, ModelObservation)
    assert (observation.requests, observation.covered) == (0, 0)
    assert {r.status for r in results} == {Status.ERROR}


def test_a_request_sampled_model_needs_every_view_online(tmp_path: Path, planted: Planted) -> None:
    config = write_config(tmp_path, planted, "ids_file: requests.csv")
    checks = tmp_path / "checks" / "fraud.yaml"
    text = checks.read_text(encoding="utf-8").replace("    online: {store: sqlite}\n", "", 1)
    checks.write_text(text, encoding="utf-8")
    with pytest.raises(
        ConfigError, match=r"have an `online` source, found none for 'merchant_stats'"
    ):
        load(config, {})


@pytest.mark.parametrize(
    ("value_time", "null", "reason", "age"),
    [
        (None, False, "absent", None),  # a value without a time: the store had none
        (datetime(1970, 1, 1, tzinfo=UTC), False, "absent", None),  # Feast's "no value" time
        (NOW - timedelta(hours=1), True, "null", 3600.0),  # a null with a time has an age
        (NOW + timedelta(hours=1), True, "null", None),  # null first; from the future: no age
        (NOW + timedelta(seconds=30), False, None, 0.0),  # within max_future: age 0
        (NOW + timedelta(seconds=90), False, "future", None),
        (NOW - timedelta(hours=2, seconds=1), False, "stale", 7201.0),
        (NOW - timedelta(hours=2), False, None, 7200.0),  # exactly the max age: usable
    ],
)
def test_one_value_is_judged_under_its_first_reason(
    value_time: datetime | None, null: bool, reason: str | None, age: float | None
) -> None:
    """absent > null > future > stale, max age 2h and max_future 60s."""
    judged = judge_value(value_time, null, NOW, max_age=7200.0, max_future=60.0)
    assert (judged.reason, judged.age) == (reason, age)


def test_each_reading_is_judged_by_its_own_time_and_an_undecodable_one_is_absent() -> None:
    """Feast's SQL stores keep a time per feature: entity 1's `a` is 10 minutes old and its
    `b` 2 days (stale, over the 1d TTL); entity 2's `a` did not decode (absent) and its `b`
    is null, an hour old. Entity 1 is asked twice."""
    view = FeatureView.model_validate(
        {"name": "v", "entity": "id", "ttl": "1d", "features": {"a": "float", "b": "float"},
         "online": {"store": "s"}}
    )  # fmt: skip
    spec = {"name": "m", "features": ["v"], "requests": {"ids_file": "ids.csv"}}
    served, problems = resolve(Model.model_validate(spec), {"v": view})
    assert served is not None, problems
    readings = [
        entity(1, a=value(1.0, timedelta(minutes=10)), b=value(2.0, timedelta(days=2))),
        entity(2, a=undecodable(), b=null(timedelta(hours=1))),
    ]
    observed = judged_requests(served, [(1,), (2,), (1,)], {"v": readings}, AT, SAMPLE)
    assert (observed.requests, observed.covered) == (3, 0)
    assert observed.features == {
        "v:a": FeatureMisses(absent=1),
        "v:b": FeatureMisses(null=1, stale=2),
    }
    # Ages: 600 and 172800 twice (entity 1), 3600 (entity 2's null): the 3rd of 5 is 3600.
    assert observed.views["v"] == ViewMisses(
        uncovered=3,
        only=3,
        reasons={"absent": 1, "null": 1, "stale": 2, "future": 0},
        ages=Ages(5, 3600.0, 172800.0, 172800.0, 172800.0),
    )
    assert observed.request_ages == Ages(3, 172800.0, 172800.0, 172800.0, 172800.0)
