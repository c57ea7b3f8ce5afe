"""How fast featmon probes a Redis online store, against named baselines.

    .venv/bin/python -m bench.online_probe [--quick] [--entities N] [--sample N] [--repeat N]
                                           [--skip-feast]

Starts a private redis-server, loads it with entities in Feast 0.67's layout (one view, four
features: a float distinct for every entity, a small count and two categories; event times
spread over the view's one-day TTL, 86,000 distinct ones), and times reading a random sample of them three ways: featmon's
`RedisOnlineStore.read`; plain redis-py pipelined HGETALL of the same keys with the same batch
size (the floor: bytes off the wire, nothing decoded); and Feast's own `get_online_features`,
in Feast's virtualenv, for the same entities in one call. For information it also times
featmon's transport alone (the same HGETALLs as the read, nothing decoded). featmon also reads
a store of a tenth as many entities (database 1 of the same server), in the same rounds. Prints a table and the ratios
against their targets; see bench/README.md. Exits 0 with the report, 2 when something could
not run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis

from bench.redis_load import BenchError, FeastLoader, FeastView, Values, private_redis
from checks.model import FeatureView
from monitor.abc import EntityKey
from monitor.config import RedisStoreConfig
from monitor.stores.redis import RedisOnlineStore
from monitor.stores.redis.client import Connection

ROOT = Path(__file__).resolve().parents[1]
FEAST_VENV = Path(os.environ.get("FEATMON_FEAST_VENV", ROOT / ".cache" / "feast-venv"))
FEAST_SCRIPT = Path(__file__).with_name("feast_probe.py")
FEAST_TIMEOUT = 900
SEED = 20_240_601

VIEW = FeastView(
    project="featmon_bench",
    name="user_stats",
    join_key="user_id",
    features={"revenue": "double", "orders": "int64", "segment": "string", "active": "bool"},
)
VALUES: dict[str, Values] = {
    "revenue": lambda user_id: user_id * 0.37,  # a float of its own for every entity
    "orders": list(range(1009)),  # small counts, each shared by about 1% of the entities
    "segment": ["bronze", "silver", "gold", "platinum", "diamond"],
    "active": [True, False, True],
}
TIME_POOL = 86_000
"""Distinct event times: one in each second of the last 86,000 of the view's one-day TTL."""
TARGETS = {"featmon / HGETALL": ("<=", 1.5), "Feast / featmon": (">=", 3.0), "size": ("<=", 1.2)}
PLAIN = "plain redis-py HGETALL"
TRANSPORT = "featmon transport, no decoding"
FEATMON = "featmon RedisOnlineStore.read"


@dataclass(frozen=True)
class Options:
    entities: int
    sample: int
    repeat: int
    warmup: int
    skip_feast: bool
    feast_venv: Path

    @property
    def first_stage(self) -> int:
        """Entities loaded for the small-store measurement: a tenth, and at least the sample."""
        return min(self.entities, max(self.entities // 10, self.sample))


@dataclass(frozen=True)
class Timing:
    """Seconds of the timed runs of one measurement (warm-up runs left out), and the CPU
    seconds this process spent in each (`time.process_time`; none for Feast's process)."""

    name: str
    seconds: tuple[float, ...]
    cpu: tuple[float, ...] = ()

    @property
    def cpu_median(self) -> float | None:
        return statistics.median(self.cpu) if self.cpu else None

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def min(self) -> float:
        return min(self.seconds)


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.online_probe", description=__doc__.split("\n\n")[0]
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--entities", type=int, default=1_000_000, help="entities loaded (1M)")
    size.add_argument("--quick", action="store_true", help="a smoke run: 100,000 entities")
    parser.add_argument("--sample", type=int, default=10_000, help="entities read (10,000)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each (5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first (1)")
    parser.add_argument("--skip-feast", action="store_true", help="no Feast measurement")
    parser.add_argument(
        "--feast-venv", type=Path, default=FEAST_VENV, help=f"Feast 0.67's venv ({FEAST_VENV})"
    )
    args = parser.parse_args(argv)
    entities = 100_000 if args.quick else args.entities
    if not 1 <= args.sample <= entities or args.repeat < 1 or args.warmup < 0:
        parser.error("expected 1 <= --sample <= entities, --repeat >= 1 and --warmup >= 0")
    return Options(
        entities, args.sample, args.repeat, args.warmup, args.skip_feast, args.feast_venv
    )


def featmon_view() -> FeatureView:
    """The loaded view as featmon declares it."""
    return FeatureView.model_validate(
        {
            "name": VIEW.name,
            "entity": VIEW.join_key,
            "entity_types": {VIEW.join_key: "int64"},
            "ttl": "1d",
            "features": VIEW.features,
            "online": {"store": "redis"},
        }
    )


def say(text: str) -> None:
    print(text, flush=True)


def small_name(entities: int) -> str:
    return f"featmon @ {entities:,}"


def featmon_read(
    store: RedisOnlineStore, view: FeatureView, ids: Sequence[int]
) -> Callable[[], None]:
    """One `RedisOnlineStore.read` of `ids`, checked to find every entity undamaged."""
    keys: list[EntityKey] = [(user_id,) for user_id in ids]

    def run() -> None:
        observation = store.read(view, keys, "online")
        if observation.found != len(keys) or observation.decode_errors:
            raise BenchError(
                f"featmon found {observation.found} of {len(keys)} entities with "
                f"{observation.decode_errors} decode errors: the load is wrong"
            )

    return run


def hgetall(client: redis.Redis, keys: Sequence[bytes], batch: int) -> Callable[[], None]:
    """Pipelined HGETALL of `keys`, `batch` a round trip, checked to find every hash."""

    def run() -> None:
        found = 0
        for start in range(0, len(keys), batch):
            pipe = client.pipeline(transaction=False)
            for key in keys[start : start + batch]:
                pipe.hgetall(key)
            found += sum(1 for fields in pipe.execute() if fields)
        if found != len(keys):
            raise BenchError(f"HGETALL found {found} of {len(keys)} hashes: the load is wrong")

    return run


def transport(connection: Connection, keys: Sequence[bytes], batch: int) -> Callable[[], None]:
    """featmon's own HGETALLs of `keys` (`Connection.read_hashes`, as `read` sends them),
    nothing decoded: what the read costs before decoding. Checked to find every hash."""

    def run() -> None:
        reads = connection.read_hashes(keys, batch, time.monotonic() + 60)
        found = sum(1 for fields in reads.hashes.values() if fields)
        if found != len(keys):
            raise BenchError(f"featmon's HGETALLs found {found} of {len(keys)} hashes")

    return run


def interleaved(runs: dict[str, Callable[[], None]], options: Options) -> list[Timing]:
    """Each run in turn, round after round, so that a burst of other load hits all alike."""
    for _ in range(options.warmup):
        for run in runs.values():
            run()
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(options.repeat):
        for name, run in runs.items():
            started, started_cpu = time.perf_counter(), time.process_time()
            run()
            seconds[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - started_cpu)
    return [Timing(name, tuple(seconds[name]), tuple(cpu[name])) for name in runs]


def feast_python(options: Options) -> Path:
    python = options.feast_venv / "bin" / "python"
    if not python.exists():
        raise BenchError(
            f"no Feast virtualenv at {options.feast_venv}: run `pytest -m feast` once to create "
            "it, pass --feast-venv, or run with --skip-feast"
        )
    return python


def run_feast(python: Path, command: str, spec: dict[str, object], workdir: Path) -> None:
    path = workdir / f"feast-{command}.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    try:
        done = subprocess.run(  # noqa: S603 - Feast's interpreter running our own script
            [str(python), str(FEAST_SCRIPT), command, str(path)],
            capture_output=True,
            text=True,
            timeout=FEAST_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"feast_probe.py {command} ran past {FEAST_TIMEOUT} s") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        raise BenchError(f"feast_probe.py {command} failed ({done.returncode}):\n{tail}")


def feast_spec(workdir: Path, port: int) -> dict[str, object]:
    view = {"name": VIEW.name, "join_key": VIEW.join_key, "features": VIEW.features}
    return {"repo": str(workdir / "feature_repo"), "port": port, "project": VIEW.project,
            "view": view}  # fmt: skip


def feast_timing(
    python: Path, spec: dict[str, object], ids: Sequence[int], options: Options, workdir: Path
) -> tuple[Timing, str]:
    """Feast's `get_online_features` of `ids` in one call, and Feast's version."""
    out = workdir / "feast-result.json"
    read = {**spec, "ids": list(ids), "warmup": options.warmup, "repeat": options.repeat,
            "found_feature": "orders", "out": str(out)}  # fmt: skip
    run_feast(python, "read", read, workdir)
    result = json.loads(out.read_text(encoding="utf-8"))
    if result["found"] != len(ids):
        raise BenchError(f"Feast found {result['found']} of {len(ids)} entities: layout wrong?")
    return Timing("Feast get_online_features", tuple(result["seconds"])), result["feast_version"]


def event_times(now: datetime) -> list[datetime]:
    """`TIME_POOL` event times, one in each second before `now`, each with microseconds of its
    own (as event times written from pandas have): entity `i` gets the `i`-th."""
    return [
        now - timedelta(seconds=index, microseconds=index * 7_919 % 1_000_000)
        for index in range(TIME_POOL)
    ]


def load(loader: FeastLoader, first: int, last: int, where: str) -> None:
    started = time.perf_counter()
    loader.load(first, last)
    elapsed = time.perf_counter() - started
    count = last - first + 1
    say(
        f"loaded {count:,} entities into {where} in {elapsed:.1f} s "
        f"({count / elapsed:,.0f} entities/s)"
    )


def conditions() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load average {one:.2f} {five:.2f} {fifteen:.2f}"


@dataclass(frozen=True)
class Results:
    timings: list[Timing]
    feast_version: str | None


def measure(options: Options, workdir: Path) -> Results:
    """Loads the private Redis and times every reader; see the module doc. The small store is
    database 1 of the same server, so that featmon reading it is timed in the same rounds."""
    python = None if options.skip_feast else feast_python(options)
    rng = random.Random(SEED)
    view = featmon_view()
    with private_redis(workdir) as server:
        spec = feast_spec(workdir, server.port)
        if python is not None:
            started = time.perf_counter()
            run_feast(python, "apply", spec, workdir)
            say(f"feast apply took {time.perf_counter() - started:.1f} s (not timed below)")
        times = event_times(datetime.now(UTC))
        loader = FeastLoader(server.port, VIEW, VALUES, times)
        first = options.first_stage
        small_db = first < options.entities
        small_loader = FeastLoader(server.port, VIEW, VALUES, times, db=1) if small_db else None
        settings = {"type": "redis", "layout": "feast", "project": VIEW.project}
        config = RedisStoreConfig.model_validate({**settings, "url": server.url})
        store = RedisOnlineStore("bench", config, known_views=[view])
        small_url = server.url.removesuffix("/0") + "/1"
        small_store = RedisOnlineStore(
            "bench-small",
            RedisStoreConfig.model_validate({**settings, "url": small_url}),
            known_views=[view],
        )
        client = redis.Redis(host="127.0.0.1", port=server.port, protocol=2)
        connection = Connection(
            "bench", server.url, cluster=False, timeout=timedelta(seconds=60)
        )  # creates its own client, closed below
        try:
            if small_loader is not None:
                load(small_loader, 1, first, "database 1")
            load(loader, 1, options.entities, "database 0")
            info = client.info("memory")
            say(
                f"redis-server holds {client.dbsize():,} keys in database 0, "
                f"{info['used_memory_human']} in all"
            )
            ids = rng.sample(range(1, options.entities + 1), options.sample)
            keys = [loader.key(user_id) for user_id in ids]
            runs = {
                PLAIN: hgetall(client, keys, config.batch_size),
                TRANSPORT: transport(connection, keys, config.batch_size),
                FEATMON: featmon_read(store, view, ids),
            }
            if small_db:
                small_ids = rng.sample(range(1, first + 1), options.sample)
                runs[small_name(first)] = featmon_read(small_store, view, small_ids)
            timings = interleaved(runs, options)
            version = None
            if python is not None:
                feast, version = feast_timing(python, spec, ids, options, workdir)
                timings.append(feast)
        finally:
            loader.close()
            if small_loader is not None:
                small_loader.close()
            store.close()
            small_store.close()
            client.close()
            connection.close()
    return Results(timings, version)


def verdict(name: str, value: float | None) -> str:
    if name not in TARGETS:
        return "(information)"
    op, target = TARGETS[name]
    if value is None:
        return f"{op} {target:<4g}  n/a"
    met = value <= target if op == "<=" else value >= target
    return f"{op} {target:<4g}  {'PASS' if met else 'MISS'}"


def report(options: Options, results: Results) -> None:
    by_name = {timing.name: timing for timing in results.timings}
    plain, own, featmon = by_name[PLAIN], by_name[TRANSPORT], by_name[FEATMON]
    feast = by_name.get("Feast get_online_features")
    small = by_name.get(small_name(options.first_stage))
    rows = [
        plain,
        own,
        featmon,
        *([feast] if feast else []),
        *([small] if small else []),
    ]
    say("")
    say(
        f"{options.sample:,} of {options.entities:,} entities, {len(VIEW.features)} features, "
        f"{options.repeat} timed runs after {options.warmup} warm-up"
        + (f"; Feast {results.feast_version}" if results.feast_version else "")
    )
    say(f"{'reader':<36}{'median ms':>11}{'min ms':>10}{'entities/s':>13}{'CPU ms':>9}")
    for timing in rows:
        rate = options.sample / timing.median
        cpu = "-" if timing.cpu_median is None else f"{timing.cpu_median * 1e3:.1f}"
        say(
            f"{timing.name:<36}{timing.median * 1e3:>11.1f}{timing.min * 1e3:>10.1f}"
            f"{rate:>13,.0f}{cpu:>9}"
        )
    ratios: list[tuple[str, str, Timing | None, Timing | None]] = [
        ("featmon / HGETALL", "featmon / plain HGETALL", featmon, plain),
        ("Feast / featmon", "Feast / featmon", feast, featmon),
        ("size", f"featmon@{options.entities:,} / @{options.first_stage:,}", featmon,
         small),
        ("transport", "featmon / its transport", featmon, own),
    ]  # fmt: skip
    say("")
    say(f"{'ratio':<40}{'median':>8}{'min':>8}{'CPU':>8}   target")
    for key, label, top, bottom in ratios:
        if top is None or bottom is None:
            say(f"{label:<40}{'-':>8}{'-':>8}{'-':>8}   {verdict(key, None)}")
            continue
        value = top.median / bottom.median
        top_cpu, bottom_cpu = top.cpu_median, bottom.cpu_median
        cpu = "-" if top_cpu is None or bottom_cpu is None else f"{top_cpu / bottom_cpu:.2f}"
        say(f"{label:<40}{value:>8.2f}{top.min / bottom.min:>8.2f}{cpu:>8}   {verdict(key, value)}")


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    say(f"machine: {conditions()}")
    try:
        with tempfile.TemporaryDirectory(prefix="featmon-bench-") as workdir:
            results = measure(options, Path(workdir))
    except BenchError as exc:
        print(f"online_probe: {exc}", file=sys.stderr)
        return 2
    report(options, results)
    say(f"machine after: {conditions()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
