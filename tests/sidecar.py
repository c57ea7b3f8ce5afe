"""Shared by the sidecar tests: a state database filled by running the demo, and the sidecar
served on a free loopback port."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry

from checks.result import RunResult
from monitor.app import build_app
from monitor.config import parse_listen
from monitor.demo import example_config
from monitor.demo import store as planted
from monitor.http import Readiness, Services, Sidecar, create_app
from monitor.http.links import ReportLinks
from monitor.loader import load
from monitor.metrics import Exposition, Metrics, fixed_state
from monitor.runs.run import run_once
from monitor.state import StateStore

NOW = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
# The demo runs three times, ten minutes apart; the last one is at the planted NOW.
SCHEDULES = (NOW - timedelta(minutes=20), NOW - timedelta(minutes=10), NOW)


@dataclass(frozen=True)
class Demo:
    directory: Path
    state_url: str
    runs: tuple[RunResult, ...]  # oldest first


def run_demo(directory: Path) -> Demo:
    """Build the demo store, run its checks at each of SCHEDULES, record every run in a SQLite
    state database, as the daemon does (the sidecar renders their reports from it)."""
    planted.build(directory, NOW)
    loaded = load(example_config(), {"FEATMON_DEMO_DIR": str(directory)})
    runs = []
    with build_app(loaded) as app:
        assert app.state is not None
        for moment in SCHEDULES:
            run = run_once(app, moment, run_id=f"{moment:%Y%m%dT%H%M%SZ}-demo")
            app.record(run)
            runs.append(run)
    return Demo(directory, f"sqlite:///{directory / 'state.db'}", tuple(runs))


@dataclass
class Flags:
    """Readiness flags a test flips."""

    config_loaded: bool = True
    scheduler_running: bool = True

    def readiness(self) -> Readiness:
        return Readiness(lambda: self.config_loaded, lambda: self.scheduler_running)


@contextlib.contextmanager
def serve(
    state: StateStore | None,
    *,
    token: str | None = None,
    flags: Flags | None = None,
    registry: CollectorRegistry | None = None,
    allowed_hosts: tuple[str, ...] = (),
    links: ReportLinks | None = None,
    listen: str = "127.0.0.1:0",
) -> Iterator[str]:
    """The sidecar on a free port (loopback unless `listen` says otherwise), as the daemon
    wires it; yields its base URL, on 127.0.0.1. Without `registry`, a fresh one with the
    daemon's `Metrics` over `state`."""
    if registry is None:
        registry = CollectorRegistry()
        Metrics(registry, fixed_state(state))
    services = Services(
        metrics=Exposition(registry),
        state=fixed_state(state),
        readiness=(flags or Flags()).readiness(),
        token=token,
        listen_host=parse_listen(listen)[0],
        allowed_hosts=allowed_hosts,
        links=links,
    )
    with Sidecar(create_app(services), listen) as sidecar:
        _, port = sidecar.address
        yield f"http://127.0.0.1:{port}"
