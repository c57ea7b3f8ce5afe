"""Daemon replicas sharing one state database: each scheduled run of each view runs once.

The claim statements on SQLite and PostgreSQL, then two real `featmon run` processes on one
PostgreSQL state database, one of them killed half-way."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from checks.result import RunResult
from monitor.demo import store as planted
from monitor.state import ClaimEnd, ClaimOutcome, StateStore
from tests.test_daemon import MERCHANTS, REPO, USERS, free_port, wait_for

pytestmark = pytest.mark.every_state_backend  # tests/conftest.py: SQLite and PostgreSQL

# Online only (keys sampled from the online store): a run takes tens of milliseconds, well
# within the 1 s interval even with two daemons and PostgreSQL on two cores.
VIEWS = "".join(
    "\n".join(line for line in view.splitlines() if "offline:" not in line) + "\n"
    for view in (MERCHANTS, USERS)
)
SKIPPED = re.compile(r"run of view (\S+) scheduled at (\S+) (?:skipped|dropped)")

T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=5)
SECOND = timedelta(seconds=1)


# -- the claim statements -------------------------------------------------------------------------


def test_the_first_claim_wins_and_every_later_one_is_elsewhere(state: StateStore) -> None:
    assert state.claim_run("v", T0, "a", T0, LEASE) is ClaimOutcome.WON
    assert state.claim_run("v", T0, "b", T0, LEASE) is ClaimOutcome.ELSEWHERE
    assert state.claim_run("v", T0, "a", T0, LEASE) is ClaimOutcome.ELSEWHERE
    assert state.claim_run("v", T0 + SECOND, "b", T0, LEASE) is ClaimOutcome.WON
    assert state.claim_run("w", T0, "b", T0, LEASE) is ClaimOutcome.WON
    (claim,) = state.run_claims(view="v", since=T0)[:1]
    assert (claim.holder, claim.attempt, claim.expires_at, claim.end) == ("a", 1, T0 + LEASE, None)


def test_an_abandoned_claim_is_taken_over_once_and_its_old_holder_cannot_finish_it(
    state: StateStore,
) -> None:
    state.claim_run("v", T0, "dead", T0, LEASE)
    later = T0 + LEASE + SECOND
    assert [c.holder for c in state.abandoned_run_claims(later)] == ["dead"]
    assert state.claim_run("v", T0, "b", later, LEASE) is ClaimOutcome.TAKEN_OVER
    assert state.claim_run("v", T0, "c", later, LEASE) is ClaimOutcome.ELSEWHERE
    assert state.abandoned_run_claims(later) == []
    assert not state.finish_run_claim("v", T0, "dead", later)
    assert state.finish_run_claim("v", T0, "b", later)
    (claim,) = state.run_claims()
    assert (claim.holder, claim.attempt, claim.end) == ("b", 2, ClaimEnd.DONE)


def test_a_run_is_recorded_with_its_claim_finished_only_by_the_claims_holder(
    state: StateStore,
) -> None:
    """Recording and finishing are one transaction: the holder that lost its claim to a
    takeover records nothing, so a run killed between the two is never recorded twice."""
    state.claim_run("v", T0, "dead", T0, LEASE)
    state.claim_run("v", T0, "b", T0 + LEASE + SECOND, LEASE)
    assert not state.record_run(RunResult("late", T0, T0, T0, ()), ("v", "dead"))
    assert state.run("late") is None
    assert state.record_run(RunResult("ok", T0, T0, T0, ()), ("v", "b"))
    assert state.run("ok") is not None
    (claim,) = state.run_claims()
    assert (claim.holder, claim.end) == ("b", ClaimEnd.DONE)


def test_a_finished_claim_is_never_taken_over_however_old(state: StateStore) -> None:
    state.claim_run("v", T0, "a", T0, LEASE)
    assert state.finish_run_claim("v", T0, "a", T0 + SECOND)
    much_later = T0 + timedelta(days=1)
    assert state.claim_run("v", T0, "b", much_later, LEASE) is ClaimOutcome.ELSEWHERE
    assert state.abandoned_run_claims(much_later) == []


def test_a_renewed_claim_is_not_abandoned_and_only_the_holders_claims_are_renewed(
    state: StateStore,
) -> None:
    state.claim_run("v", T0, "a", T0, LEASE)
    state.claim_run("w", T0, "b", T0, LEASE)
    assert state.renew_run_claims("a", T0 + timedelta(seconds=4), LEASE) == 1
    at = T0 + timedelta(seconds=6)
    assert [c.holder for c in state.abandoned_run_claims(at)] == ["b"]
    assert state.claim_run("v", T0, "c", at, LEASE) is ClaimOutcome.ELSEWHERE


def test_an_abandoned_claim_is_declared_lost_by_one_caller(state: StateStore) -> None:
    state.claim_run("v", T0, "dead", T0, LEASE)
    assert not state.lose_run_claim("v", T0, T0 + SECOND)  # its lease is still running
    later = T0 + timedelta(minutes=5)
    assert state.lose_run_claim("v", T0, later)
    assert not state.lose_run_claim("v", T0, later)
    (claim,) = state.run_claims()
    assert (claim.end, claim.finished_at) == (ClaimEnd.LOST, later)
    assert state.claim_run("v", T0, "b", later, LEASE) is ClaimOutcome.ELSEWHERE


def test_claims_are_pruned_by_scheduled_time(state: StateStore) -> None:
    for k in range(3):
        state.claim_run("v", T0 + k * SECOND, "a", T0, LEASE)
    assert state.prune_run_claims(T0 + 2 * SECOND) == 2
    assert [c.scheduled_at for c in state.run_claims()] == [T0 + 2 * SECOND]


def test_of_many_concurrent_claimers_exactly_one_wins(state: StateStore) -> None:
    """Eight threads (own connections) race for each of 20 runs, and for a takeover of an
    abandoned one: one winner each time."""
    state.claim_run("abandoned", T0, "dead", T0 - timedelta(minutes=1), LEASE)
    outcomes: list[tuple[str, ClaimOutcome]] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def race(holder: str) -> None:
        start.wait()
        for k in range(20):
            outcome = state.claim_run("v", T0 + k * SECOND, holder, T0, LEASE)
            with lock:
                outcomes.append((f"v{k}", outcome))
        outcome = state.claim_run("abandoned", T0, holder, T0, LEASE)
        with lock:
            outcomes.append(("abandoned", outcome))

    threads = [threading.Thread(target=race, args=(f"h{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    winners = Counter(run for run, outcome in outcomes if outcome is not ClaimOutcome.ELSEWHERE)
    assert winners == Counter({**{f"v{k}": 1 for k in range(20)}, "abandoned": 1})
    assert ("abandoned", ClaimOutcome.TAKEN_OVER) in outcomes


# -- two replicas -------------------------------------------------------------------------------


def replica_config(root: Path, store_dir: Path, state_url: str) -> Path:
    """A daemon's own directory: config.yaml (its own HTTP port and reports) and the two
    views' check file, over the shared demo store and the shared state database."""
    (root / "checks").mkdir(parents=True)
    (root / "checks" / "c.yaml").write_text("feature_views:\n" + VIEWS, encoding="utf-8")
    config = root / "config.yaml"
    config.write_text(
        "stores:\n"
        f"  online: {{type: feast-sqlite, path: '{store_dir}/online.db', project: demo}}\n"
        f"  lake: {{type: parquet, root: '{store_dir}/offline'}}\n"
        "checks: checks/*.yaml\n"
        f"state: {{url: '{state_url}'}}\n"
        f"http: {{listen: '127.0.0.1:{free_port()}'}}\n"
        "reports: {dir: reports}\n",
        encoding="utf-8",
    )
    return config


def start_replica(config: Path) -> subprocess.Popen[bytes]:
    log = (config.parent / "featmon.log").open("w")
    with log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "monitor.cli.main",
                "run",
                "--config",
                str(config),
                "--grace",
                "5s",
            ],
            cwd=REPO,
            stderr=log,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )


def wait_until_both_claimed(url: str, pids: set[int], timeout: float) -> None:
    """Until every view has claims by each of `pids` (or `timeout` seconds: the test's own
    assertion then says which replica did no work)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with StateStore(url) as state:
            claims = state.run_claims()
        by_view: dict[str, set[int]] = {}
        for claim in claims:
            by_view.setdefault(claim.feature_view, set()).add(holder_pid(claim.holder))
        if len(by_view) >= 2 and all(pids <= held for held in by_view.values()):
            return
        time.sleep(0.5)


def holder_pid(holder: str) -> int:
    return int(holder.split(":")[-2])


def skipped_everywhere(logs: list[str], view: str) -> set[datetime]:
    """The times of `view` that every replica logged as skipped (its previous run was still
    going) or dropped (past the misfire grace): a replica busy with a view leaves the next run
    to the others, and only when all are busy does it not run."""
    per_replica = [
        {datetime.fromisoformat(at) for name, at in SKIPPED.findall(text) if name == view}
        for text in logs
    ]
    return set.intersection(*per_replica) if per_replica else set()


def assert_each_time_once(times: list[datetime], view: str, excused: set[datetime]) -> None:
    """The scheduled times of one view: no time twice, and every second from first to last
    unless every replica logged why not."""
    doubles = [at for at, n in Counter(times).items() if n > 1]
    assert not doubles, f"{view} ran twice at {doubles}"
    ordered = sorted(times)
    expected = {ordered[0] + k * SECOND for k in range(int((ordered[-1] - ordered[0]) / SECOND))}
    missing = sorted(expected - set(ordered) - excused)
    assert not missing, f"{view} did not run at {missing}, and not every replica said why"


@pytest.mark.slow
@pytest.mark.postgres
def test_two_replicas_run_each_scheduled_run_once_and_the_survivor_takes_over(
    tmp_path: Path, pg_schema_url: str
) -> None:
    """Two `featmon run` on one PostgreSQL state database, two views every second: for 6 s
    every scheduled time of each view runs exactly once, both replicas do some of the work;
    after one is SIGKILLed, the other runs every later time, and no claim is left unfinished."""
    store_dir = tmp_path / "store"
    planted.build(store_dir, datetime.now(UTC))
    with StateStore(pg_schema_url) as state:
        state.migrate()  # before either starts, so the two do not race to create the schema
    configs = [replica_config(tmp_path / name, store_dir, pg_schema_url) for name in "ab"]
    replicas = [start_replica(config) for config in configs]
    try:
        for config in configs:
            wait_for(config.parent / "featmon.log", lambda text: "featmon running" in text)
        # At least 6 s of both, and until each replica has won a claim of each view: on a
        # loaded machine one replica may win every race for a while, which proves nothing.
        time.sleep(6)
        wait_until_both_claimed(pg_schema_url, {r.pid for r in replicas}, timeout=30)
        killed, survivor = replicas
        killed.send_signal(signal.SIGKILL)
        killed.wait(5)
        killed_at = datetime.now(UTC)
        time.sleep(LEASE.total_seconds() + 4)  # a run the killed one held is taken over
        survivor.send_signal(signal.SIGTERM)
        assert survivor.wait(15) == 0
    finally:
        for replica in replicas:
            if replica.poll() is None:
                replica.kill()
                replica.wait(5)
    with StateStore(pg_schema_url) as state:
        runs = state.runs(limit=1000)
        claims = state.run_claims()
    logs = [(config.parent / "featmon.log").read_text() for config in configs]
    for view in ("merchant_stats", "user_stats"):
        # Before the kill both must have skipped a time; after it, the survivor alone.
        excused = {at for at in skipped_everywhere(logs, view) if at < killed_at} | {
            at for at in skipped_everywhere(logs[1:], view) if at >= killed_at
        }
        times = [r.scheduled_at for r in runs if r.feature_view == view]
        assert_each_time_once(times, view, excused)
        view_claims = [c for c in claims if c.feature_view == view]
        claimed = sorted(c.scheduled_at for c in view_claims)
        ran = sorted(r.scheduled_at for r in runs if r.feature_view == view)
        assert claimed == ran, "every claim ended in one recorded run, and every run was claimed"
        assert all(c.end is ClaimEnd.DONE for c in view_claims)
        # Both replicas did part of the work, and after the kill only the survivor did.
        pids = {holder_pid(c.holder) for c in view_claims if c.scheduled_at < killed_at}
        assert pids == {killed.pid, survivor.pid}
        after = [c for c in view_claims if c.scheduled_at > killed_at + SECOND]
        assert len(after) >= LEASE.total_seconds() + 2
        assert {holder_pid(c.holder) for c in after} == {survivor.pid}
    survivor_log = (configs[1].parent / "featmon.log").read_text()
    assert "was lost" not in survivor_log
