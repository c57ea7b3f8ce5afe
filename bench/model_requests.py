"""The request-sample mode of `bench.model_logs`: a model's requests probed online now.

Run through `python -m bench.model_logs` (`--sample N`, 10,000 by default; 0 skips it). Starts a
private redis-server and loads three feature views in Feast 0.67's layout (12 features:
`user_stats` 5 on `user_id`, `merchant_stats` 4 on `merchant_id`, `device_stats` 3 on
`device_id`; event times within the views' one-day TTL), writes a file of 1,000,000 recent
requests of a model served all 12 (popular entities drawn far more often), and times, after one
warm-up, the median of the runs of:

- featmon `requests.observe`: the whole probe of the model: the sample drawn from the file
  (reservoir sampling, one pass), one read per view of the distinct entities it asks for,
  every request judged;
- its parts: the draw alone; each view's read alone; the judgment alone
  (`checks.requests.observe` over readings already read).

Printed for information, beside the serving log's timings: there is no target. Every request
must be covered (every entity was loaded, every value fresh), or the run stops: a wrong load
must not produce fast numbers.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.online_probe import conditions, say
from bench.redis_load import (
    BenchError,
    FeastLoader,
    FeastView,
    Values,
    event_times,
    private_redis,
)
from checks import requests as judged
from checks.model import FeatureView
from checks.observation import ProbeFailure
from checks.requests import Sample, view_keys
from monitor.abc import EntityKey, OnlineStore
from monitor.app import App, build_app
from monitor.loader import LoadedModel, load
from monitor.runs import population, requests

SEED = 20_261_126
PROJECT = "featmon_bench"
VIEWS = (
    FeastView(PROJECT, "user_stats", "user_id", {
        "revenue": "double", "orders": "int64", "segment": "string", "active": "bool",
        "days_since_signup": "int64",
    }),
    FeastView(PROJECT, "merchant_stats", "merchant_id", {
        "risk": "double", "chargebacks": "int64", "category": "string", "volume": "double",
    }),
    FeastView(PROJECT, "device_stats", "device_id", {
        "trust": "double", "sessions": "int64", "os": "string",
    }),
)  # fmt: skip
POOLS: dict[str, Values] = {
    "double": [index * 0.37 for index in range(1009)],
    "int64": list(range(997)),
    "string": ["bronze", "silver", "gold", "platinum", "diamond"],
    "bool": [True, False, True],
}
TIMES = 86_000  # distinct event times, one a second, the newest now
USERS = 1_000_000  # merchants and devices a tenth of it
REQUESTS = 1_000_000  # rows of the request file


@dataclass(frozen=True)
class Options:
    users: int
    requests: int
    sample: int
    repeat: int

    @property
    def entities(self) -> tuple[int, int, int]:
        """Users, merchants and devices loaded: merchants and devices a tenth of the users."""
        return self.users, max(1, self.users // 10), max(1, self.users // 10)


def write_requests(path: Path, options: Options) -> None:
    """`options.requests` rows of (user, merchant, device), each id drawn with density
    falling as its square root (id 1 is the most requested)."""
    rng = random.Random(SEED)
    counts = options.entities
    with path.open("w", encoding="utf-8") as file:
        file.write("user_id,merchant_id,device_id\n")
        for _ in range(options.requests):
            ids = (1 + int(count * rng.random() ** 2) for count in counts)
            file.write(",".join(map(str, ids)) + "\n")


def write_config(workdir: Path, url: str, options: Options) -> Path:
    views = "".join(
        f"  - {{name: {v.name}, entity: {v.join_key}, entity_types: {{{v.join_key}: int64}}, "
        f"ttl: 1d, features: {v.features}, online: {{store: redis}}}}\n"
        for v in VIEWS
    ).replace("'", "")
    model = (
        f"  - name: checkout\n    features: [{', '.join(v.name for v in VIEWS)}]\n"
        f"    requests: {{ids_file: requests.csv, sample: {options.sample}}}\n"
        "    checks: [{kind: coverage, min: 0.95}]\n"
    )
    (workdir / "checks.yaml").write_text(
        f"feature_views:\n{views}models:\n{model}", encoding="utf-8"
    )
    config = f"stores:\n  redis: {{type: redis, url: '{url}', project: {PROJECT}}}\n"
    (workdir / "config.yaml").write_text(config + "checks: checks.yaml\n", encoding="utf-8")
    return workdir / "config.yaml"


def load_views(port: int, options: Options, now: datetime) -> None:
    times = event_times(now, TIMES)
    for view, count in zip(VIEWS, options.entities, strict=True):
        values = {name: POOLS[dtype] for name, dtype in view.features.items()}
        loader = FeastLoader(port, view, values, times)
        started = time.perf_counter()
        try:
            loader.load(1, count)
        finally:
            loader.close()
        say(f"loaded {count:,} entities of {view.name} in {time.perf_counter() - started:.1f} s")


def timed(run: Callable[[], object], repeat: int) -> list[float]:
    run()  # warm-up
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    return seconds


def reader(store: OnlineStore, view: FeatureView, keys: list[EntityKey]) -> Callable[[], object]:
    """One read of `keys` in the view's store, as the probe reads it."""
    return lambda: store.read(view, keys, "ids_file", undeclared=False)


def measure(app: App, model: LoadedModel, options: Options, now: datetime) -> None:
    """Times the probe and its parts (see the module doc) and prints them."""
    source = model.served.model.requests
    if source is None or source.ids_file is None:
        raise BenchError("the model has no request file")
    ids_file = source.ids_file
    observation = requests.observe(model, app.stores, now, random.Random(SEED))
    if isinstance(observation, ProbeFailure):
        raise BenchError(f"the probe failed: {observation.reason}")
    if observation.covered != options.sample:
        raise BenchError(f"{observation.covered} of {options.sample} requests covered: bad load")
    keyed = population.RequestKeys.of(model.views)
    drawn = population.recent_requests(
        keyed, None, ids_file, options.sample, None, "ids_file", random.Random(SEED)
    )
    keys = view_keys(model.served, drawn)
    store = app.stores.online["redis"]
    entities = {
        v.name: store.read(v, keys[v.name], "ids_file", undeclared=False).entities
        for v in model.views
    }
    sample = Sample("", "ids_file", options.sample)
    runs: dict[str, Callable[[], object]] = {
        "featmon requests.observe (whole probe)": lambda: requests.observe(
            model, app.stores, now, random.Random(SEED)
        ),
        "  draw from the request file": lambda: population.recent_requests(
            keyed, None, ids_file, options.sample, None, "ids_file", random.Random(SEED)
        ),
        **{
            f"  read {v.name} ({len(keys[v.name]):,} entities)": reader(store, v, keys[v.name])
            for v in model.views
        },
        "  judge every request": lambda: judged.observe(model.served, drawn, entities, now, sample),
    }
    say("")
    say(
        f"{options.sample:,} requests drawn from {options.requests:,}; "
        f"{options.entities[0]:,} users, 12 features over 3 views; median of {options.repeat}"
    )
    say(f"{'step':<48}{'median ms':>11}{'min ms':>10}{'requests/s':>13}")
    for name, run in runs.items():
        seconds = timed(run, options.repeat)
        median = statistics.median(seconds)
        rate = options.sample / median
        say(f"{name:<48}{median * 1e3:>11.1f}{min(seconds) * 1e3:>10.1f}{rate:>13,.0f}")


def bench_requests(sample: int, repeat: int, users: int = USERS, requests: int = REQUESTS) -> None:
    """Loads a private Redis and a request file, then times the probe of a sample of `sample`
    requests and its parts, and prints them. Raises `BenchError` when it cannot run."""
    options = Options(users, requests, sample, repeat)
    now = datetime.now(UTC)
    say(f"\nrequest sample: {sample:,} of {requests:,} requests; machine: {conditions()}")
    with tempfile.TemporaryDirectory(prefix="featmon-bench-") as directory:
        workdir = Path(directory)
        with private_redis(workdir) as server:
            load_views(server.port, options, now)
            started = time.perf_counter()
            write_requests(workdir / "requests.csv", options)
            say(f"wrote {options.requests:,} requests in {time.perf_counter() - started:.1f} s")
            with build_app(load(write_config(workdir, server.url, options), {}), False) as app:
                (model,) = app.loaded.models
                measure(app, model, options, now)
