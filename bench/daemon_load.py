"""The daemon under load: N feature views (500) with 4 checks each, every minute, for M minutes.

Builds, in a temporary directory: a Feast SQLite online store (half the views, one table each),
a private redis-server in Feast's layout (the other half), and a SQLite offline table per view
(the population and the late-arrival check), `entities` rows each; then runs `featmon run` on
them with a SQLite state database and measures the daemon process over the last M minutes:

- CPU seconds per minute (utime + stime of the process, /proc), and the same minus the CPU
  that the probes themselves took: each run's log line gives the CPU time its worker thread spent
  inside the probe (`probe CPU N ms`: the store queries, which run in-process for SQLite, the
  decoding of Redis replies, and the evaluation). The difference is what the daemon costs beyond
  the queries: scheduling, claims, recording, alerting, logging, metrics, the sidecar, threads;
- peak RSS (VmHWM);
- scheduling lateness: the p99 of "started N ms late" from the daemon's run log lines;
- alerting's share: the CPU of each alerting step after a run (its log line says it), per step
  and as a part of the daemon's CPU.

Targets: under 10% of one core beyond the queries, RSS under 200 MB, lateness p99 under 1 s.
Prints PASS or MISS for each. Exits 0 with the report, 2 when something could not run.

    .venv/bin/python -m bench.daemon_load --minutes 3 --views 500
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import mean

from bench.redis_load import BenchError, FeastLoader, FeastView, event_times, private_redis
from tests.feast_fixtures import Row, create_table, key, write_rows

REPO = Path(__file__).resolve().parents[1]
PROJECT = "bench"
FEATURES = {"f_rev": "double", "f_cnt": "int64", "f_seg": "string"}
# The daemon's line for each run: the view, its lateness, wall time and the CPU its probe took.
RUN = re.compile(
    r"of view v(\d+): .*scheduled at (\S+), started (-?\d+) ms late, took (\d+) ms "
    r"\(probe CPU (\d+(?:\.\d+)?) ms\)"
)
# The alert pipeline's line for each step after a run: its wall time and the CPU it took.
ALERTING = re.compile(r"alerting run \S+: .* in (\d+(?:\.\d+)?) ms \(CPU (\d+(?:\.\d+)?) ms\)")
VIEWS_PER_FILE = 500  # a check file holds at most 100,000 YAML nodes
WARMUP = timedelta(seconds=90)  # one interval and a half: the start-up catch-up has drained
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sample:
    """The daemon at one moment: CPU seconds and log length."""

    at: float
    cpu: float
    log_offset: int


def view_yaml(index: int) -> str:
    store = "redis" if index % 2 else "sqlite"
    return (
        f"  - name: v{index}\n"
        "    entity: user_id\n"
        "    ttl: 1d\n"
        "    features: {f_rev: double, f_cnt: int64, f_seg: string}\n"
        f"    online: {{store: {store}, sample: 200, population: offline}}\n"
        f"    offline: {{store: warehouse, table: v{index}, ingested_at: created_ts}}\n"
        "    schedule: {every: 60s}\n"
        "    checks:\n"
        "      - {kind: freshness, max: 1h}\n"
        "      - {kind: coverage, min: 0.9}\n"
        "      - {kind: null_rate, feature: f_rev, max: 0.05}\n"
        "      - {kind: late_arrivals, watermark: 10m, max: 0.05}\n"
    )


def build(root: Path, views: int, entities: int, redis_port: int) -> Path:
    """The stores, the check file and config.yaml; returns the config's path."""
    now = datetime.now(UTC)
    online, offline = root / "online.db", root / "offline.db"
    times = event_times(now, entities)
    pools: dict[str, Sequence[object]] = {
        "f_rev": [round(k * 1.5, 2) for k in range(1, entities + 1)],
        "f_cnt": list(range(1, entities + 1)),
        "f_seg": [f"s{k % 7}" for k in range(1, entities + 1)],
    }
    with sqlite3.connect(offline) as conn:
        for index in range(views):
            conn.execute(
                f"CREATE TABLE v{index} (user_id INTEGER, event_timestamp TIMESTAMP, "
                "created_ts TIMESTAMP, f_rev REAL, f_cnt INTEGER, f_seg TEXT)"
            )
            conn.executemany(
                f"INSERT INTO v{index} VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        k,
                        times[k - 1].replace(tzinfo=None).isoformat(" "),
                        (times[k - 1] + timedelta(seconds=30)).replace(tzinfo=None).isoformat(" "),
                        pools["f_rev"][k - 1],
                        pools["f_cnt"][k - 1],
                        pools["f_seg"][k - 1],
                    )
                    for k in range(1, entities + 1)
                ],
            )
    for index in range(0, views, 2):
        table = f"{PROJECT}_v{index}"
        create_table(online, table)
        write_rows(
            online,
            table,
            [
                Row(
                    key(k), name, _encoded(pools[name][k - 1], dtype), int(times[k - 1].timestamp())
                )
                for k in range(1, entities + 1)
                for name, dtype in FEATURES.items()
            ],
        )
    for index in range(1, views, 2):
        loader = FeastLoader(
            redis_port, FeastView(PROJECT, f"v{index}", "user_id", FEATURES), pools, times
        )
        try:
            loader.load(1, entities)
        finally:
            loader.close()
    (root / "checks").mkdir()
    for first in range(0, views, VIEWS_PER_FILE):  # a file's YAML is bounded in size
        (root / "checks" / f"views{first // VIEWS_PER_FILE}.yaml").write_text(
            "feature_views:\n"
            + "".join(view_yaml(k) for k in range(first, min(views, first + VIEWS_PER_FILE))),
            encoding="utf-8",
        )
    config = root / "config.yaml"
    config.write_text(
        "stores:\n"
        f"  sqlite: {{type: feast-sqlite, path: '{online}', project: {PROJECT}}}\n"
        f"  redis: {{type: redis, url: 'redis://127.0.0.1:{redis_port}/0', project: {PROJECT}}}\n"
        f"  warehouse: {{type: sql, url: 'sqlite:///{offline}'}}\n"
        "checks: checks/*.yaml\n"
        "state: {url: 'sqlite:///state.db'}\n"
        f"http: {{listen: '127.0.0.1:{_free_port()}'}}\n"
        "reports: {dir: reports}\n",
        encoding="utf-8",
    )
    return config


def _encoded(value: object, dtype: str) -> bytes:
    from monitor.feast.codec import encode_value  # noqa: PLC0415  (the writer's encoder)

    return encode_value(value, dtype)


def _free_port() -> int:
    import socket  # noqa: PLC0415 - only this path needs it

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15)


def peak_rss_mb(pid: int, field: str = "VmHWM") -> float:
    """The process's peak resident memory (`VmRSS`: the current one), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"no {field} in /proc/PID/status")


def sample(pid: int, log: Path) -> Sample:
    return Sample(time.monotonic(), cpu_seconds(pid), log.stat().st_size)


def p99(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else float("nan")


def run(options: argparse.Namespace, workdir: Path) -> int:
    with private_redis(workdir) as redis_server:
        started = time.monotonic()
        config = build(workdir, options.views, options.entities, redis_server.port)
        print(f"built {options.views} views x {options.entities} entities in "
              f"{time.monotonic() - started:.1f} s ({workdir})")  # fmt: skip
        log = workdir / "featmon.log"
        with log.open("w") as stream:
            daemon = subprocess.Popen(  # noqa: S603  (our own command line)
                [sys.executable, "-m", "monitor.cli.main", "run", "--config", str(config),
                 "--workers", str(options.workers)],
                cwd=workdir, stderr=stream, env={**os.environ, "PYTHONPATH": str(REPO)},
            )  # fmt: skip
        try:
            return measure(options, daemon, log)
        finally:
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
                try:
                    daemon.wait(60)
                except subprocess.TimeoutExpired:
                    daemon.kill()


def measure(options: argparse.Namespace, daemon: subprocess.Popen[bytes], log: Path) -> int:
    deadline = time.monotonic() + 60
    while "featmon running" not in log.read_text():
        if daemon.poll() is not None or time.monotonic() > deadline:
            raise BenchError(f"the daemon did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    began = datetime.now(UTC)  # runs scheduled before this are the start-up catch-up
    loaded = peak_rss_mb(daemon.pid, "VmRSS")
    time.sleep(WARMUP.total_seconds())  # start-up and its catch-up are not the steady state
    first = sample(daemon.pid, log)
    time.sleep(options.minutes * 60)
    last = sample(daemon.pid, log)
    rss = peak_rss_mb(daemon.pid)
    now_rss = peak_rss_mb(daemon.pid, "VmRSS")
    print(f"memory: {loaded:.0f} MB resident when the daemon said it was running, {now_rss:.0f} MB "
          f"at the end, {rss:.0f} MB at the peak")  # fmt: skip
    with log.open("rb") as stream:
        warm = stream.read(first.log_offset).decode(errors="replace")
        window = stream.read(last.log_offset - first.log_offset).decode(errors="replace")
    start_up = [float(r[2]) / 1000 for r in RUN.findall(warm)]
    if start_up:
        print(f"start-up (the first {WARMUP.total_seconds():.0f} s, not measured below): "
              f"{len(start_up)} runs, lateness p99 {p99(start_up):.1f} s, max "
              f"{max(start_up):.1f} s (every view due at once, its latest grid time)")  # fmt: skip
    found = RUN.findall(window)
    catch_up = [r for r in found if datetime.fromisoformat(r[1]) < began]
    lateness = [float(r[2]) / 1000 for r in found]
    steady = [float(r[2]) / 1000 for r in found if datetime.fromisoformat(r[1]) >= began]
    probe_cpu = [float(cpu) / 1000 for _, _, _, _, cpu in found]
    minutes = (last.at - first.at) / 60
    cpu = (last.cpu - first.cpu) / minutes
    probes = sum(probe_cpu) / minutes
    beyond = max(0.0, cpu - probes)
    runs = len(lateness) / minutes
    errors = window.count(" ERROR ")
    skipped = window.count("skipped: its previous run is still going")
    dropped = window.count("dropped: no worker was free")
    late = p99(steady)
    print(f"window: {minutes:.2f} min, {len(lateness)} runs ({runs:.0f}/min, expected "
          f"{options.views}/min), {skipped} skipped, {dropped} dropped, {errors} ERROR log lines")  # fmt: skip
    print(f"CPU: {cpu:.2f} s/min in total ({cpu / 60:.1%} of a core); the probes' own "
          f"{probes:.2f} s/min; beyond the probes {beyond:.2f} s/min ({beyond / 60:.1%} of a core)")  # fmt: skip
    if runs:
        print(f"per run: {cpu / runs * 1000:.1f} ms CPU in total, {probes / runs * 1000:.1f} ms "
              f"in the probe, {beyond / runs * 1000:.1f} ms beyond it")  # fmt: skip
    if catch_up:
        print(f"start-up catch-up: {len(catch_up)} of these runs were scheduled before the daemon "
              f"started (first runs of views already due), up to "
              f"{max(float(r[2]) for r in catch_up) / 1000:.1f} s late; lateness p99 of all "
              f"runs {p99(lateness) * 1000:.0f} ms, of the {len(steady)} runs scheduled "
              f"after the start {late * 1000:.0f} ms")  # fmt: skip
    alerting = [float(cpu) / 1000 for _, cpu in ALERTING.findall(window)]
    if alerting and runs:
        share = sum(alerting) / minutes
        print(f"alerting: {len(alerting)} steps, {mean(alerting) * 1000:.1f} ms CPU per step "
              f"(p99 {p99(alerting) * 1000:.1f} ms), {share:.2f} s/min: {share / cpu:.1%} of the "
              f"daemon's CPU, {share / max(beyond, 1e-9):.1%} of what it spends beyond the "
              "probes")  # fmt: skip
    for store, parity in (("sqlite", 0), ("redis", 1)):
        mine = [(float(took), float(cpu)) for v, _, _, took, cpu in found if int(v) % 2 == parity]
        if mine:
            print(f"  {store} views: {len(mine)} runs, probe CPU {mean(c for _, c in mine):.1f} ms, "
                  f"run wall time {mean(t for t, _ in mine):.0f} ms (means)")  # fmt: skip
    verdicts = [
        ("CPU beyond the queries < 10% of a core", beyond / 60 < 0.10),
        ("every scheduled run ran (none skipped or dropped)", skipped + dropped == 0),
        (f"peak RSS {rss:.0f} MB < 200 MB", rss < 200),
        (f"lateness p99 {late * 1000:.0f} ms < 1 s (runs scheduled after the start)", late < 1.0),
    ]
    print(f"(CPU in total, queries included: {cpu / 60:.1%} of a core)")
    for text, ok in verdicts:
        print(f"{'PASS' if ok else 'MISS'}  {text}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=500)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--entities", type=int, default=200)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    options = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="featmon-daemon-load-"))
    try:
        return run(options, workdir)
    except BenchError as exc:
        print(f"daemon_load: {exc}", file=sys.stderr)
        return 2
    finally:
        if not options.keep:
            import shutil  # noqa: PLC0415 - only this path needs it

            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
