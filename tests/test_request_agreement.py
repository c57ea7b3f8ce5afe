"""On the same traffic a request sample and the serving log must agree within sampling error:
the requests are logged now in Feast's schema (Parquet, as the values are in the online stores)
and written to a request file; the sample probes the stores, the serving log is judged by its
engine. Both follow one set of rules (DESIGN.md section 3)."""

from __future__ import annotations

import dataclasses
import random
from datetime import timedelta
from pathlib import Path

from checks.observation import ModelObservation, ProbeFailure
from checks.stats import wilson
from monitor.app import build_app
from monitor.loader import load
from monitor.runs import requests, served
from tests.redis_fixtures import Planter
from tests.request_fixtures import (
    FAULTS,
    NOW,
    REQUESTS,
    Request,
    Stored,
    World,
    ago,
    model,
    plant,
    write_files,
    write_log,
)

TRAFFIC = 20_000  # requests logged, and written to the request file
SAMPLED = 2_000  # requests the sample draws from the file
USERS, MERCHANTS = 500, 60
SEED = 20_261_126


def observe_both(
    root: Path, planter: Planter, world: World, made: list[Request], sample: int
) -> tuple[ModelObservation | ProbeFailure, ModelObservation | ProbeFailure]:
    """The serving log's observation of `made` (logged at NOW, judged in the window up to a
    minute later) and a request sample's of `sample` of them (probed at NOW)."""
    planted = plant(planter, root, world, made)
    write_log(root / "logs" / "fraud", world, made)
    (root / "checks").mkdir()
    ids = "user_id,merchant_id\n" + "".join(f"{user},{merchant}\n" for user, merchant in made)
    (root / "checks" / "traffic.csv").write_text(ids, encoding="utf-8")
    models = model("logged", "serving_log: {store: logs, path: fraud}") + model(
        "sampled", f"requests: {{ids_file: traffic.csv, sample: {sample}}}"
    )
    app = build_app(load(write_files(root, planted, models), {}), with_state=False)
    logged_model, sampled_model = app.loaded.models
    with app:
        logged = served.observe(logged_model, app.stores, NOW + timedelta(minutes=1))
        sampled = requests.observe(sampled_model, app.stores, NOW, random.Random(SEED))
    return logged, sampled


def test_every_request_sampled_judges_as_the_serving_log_does(
    tmp_path: Path, redis_planter: Planter
) -> None:
    """The planted faults (missing entities, stale, null and NaN values, a value from the
    future), every request drawn: the two observations hold the same numbers."""
    logged, sampled = observe_both(tmp_path, redis_planter, FAULTS, REQUESTS, len(REQUESTS))
    assert not isinstance(logged, ProbeFailure), logged.reason
    assert isinstance(sampled, ModelObservation)
    assert (logged.requests, logged.covered) == (9, 4)
    assert numbers(sampled) == numbers(logged)


def numbers(observation: ModelObservation) -> ModelObservation:
    """The observation without where its requests were seen: what it judged of them."""
    return dataclasses.replace(
        observation,
        source="requests",
        store="",
        since=None,
        until=None,
        status_disagreements=None,
        asked=None,
        population=None,
    )


def user_now(user: int) -> Stored:
    """Popular users (1..40) are all healthy; among the others a sixth are missing, a sixth
    stale (2 days old) and a sixth have a null revenue."""
    fault = user % 6 if user > 40 else None
    if fault == 0:
        return None
    at = ago(days=2) if fault == 1 else ago(minutes=user % 50 + 1)
    return {"revenue": None if fault == 2 else user * 0.5, "orders": user}, at


def merchant_now(merchant: str) -> Stored:
    """Merchants past the 8 most popular: a fifth null, a fifth stale (3h, over the 2h)."""
    number = int(merchant.removeprefix("m"))
    fault = number % 5 if number > 8 else None
    at = ago(hours=3) if fault == 1 else ago(minutes=number % 30 + 1)
    return {"risk": None if fault == 0 else number / 100}, at


def pair_now(user: int, merchant: str) -> Stored:
    """A seventh of the pairs of users past the 30 most popular are missing."""
    if user > 30 and (user + int(merchant.removeprefix("m"))) % 7 == 0:
        return None
    return {"spend": float(user)}, ago(minutes=20)


def traffic() -> list[Request]:
    """Requests (user, merchant), each drawn by popularity (Zipf, exponent 1.2): the popular
    entities, all healthy, take most requests, so that a sample weighing entities rather than
    requests would be far off."""
    rng = random.Random(SEED)
    users = rng.choices(range(1, USERS + 1), [r**-1.2 for r in range(1, USERS + 1)], k=TRAFFIC)
    merchants = rng.choices(
        [f"m{m}" for m in range(1, MERCHANTS + 1)],
        [r**-1.2 for r in range(1, MERCHANTS + 1)],
        k=TRAFFIC,
    )
    return list(zip(users, merchants, strict=True))


def test_a_request_sample_agrees_with_the_serving_log_on_the_same_traffic(
    tmp_path: Path, redis_planter: Planter
) -> None:
    """The same 20,000 requests, logged now and written to a request file: the serving log's
    exact coverage lies within the 95% interval of a 2,000-request sample's."""
    world = World(user_now, merchant_now, pair_now)
    made = traffic()
    truth = sum(map(world.covered, made))
    pairs = set(made)  # what a sample of entities, not requests, would weigh alike
    assert sum(map(world.covered, pairs)) / len(pairs) < truth / TRAFFIC - 0.2
    logged, sampled = observe_both(tmp_path, redis_planter, world, made, SAMPLED)
    assert isinstance(sampled, ModelObservation)
    assert (sampled.requests, sampled.asked) == (SAMPLED, SAMPLED)
    assert not isinstance(logged, ProbeFailure), logged.reason
    assert (logged.requests, logged.covered) == (TRAFFIC, truth)
    interval = wilson(sampled.covered, sampled.requests)
    assert interval.low <= logged.covered / logged.requests <= interval.high
