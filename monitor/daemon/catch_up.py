"""Catching up at start: which views and models run at once, and which catch-up runs are left
to another replica. Both are named by their subject (a view's name, or `model:<name>`), and
called views below.

When the daemon starts (or a reload adds views), a view whose latest scheduled time has no
recorded run (none since, none ever, or a state database that cannot be read) catches up: it
runs within a few seconds, spread by its key, then on its schedule; a view that ran recently
waits for its next scheduled time. `monitor.daemon.scheduler.catch_up` says when each runs and which
scheduled time it is handed (the latest grid time within the misfire grace, so that the claim
on it lets one replica run it; its own fire time otherwise, so that ages are not measured
against a time minutes old).

A catch-up handed its own time is the one run whose identity replicas may not share (two
replicas starting a step apart pick times a step apart): when it comes, it is not run if a
replica claimed a run of the view since the view's latest scheduled time.

    catch_ups = CatchUps(misfire_grace)
    for name, first in catch_ups.plan(state, schedules, names, now).items():
        scheduler.put(job_key(name), schedules[name], job, now, first)
    ...
    if catch_ups.ran_elsewhere(state, name, scheduled_at): return   # in the run, before its claim
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta

from checks.schedule import Schedule
from monitor.daemon.scheduler import (
    CATCH_UP_SPREAD,
    CatchUp,
    First,
    catch_up,
    job_key,
    previous_time,
    spelled,
)
from monitor.state import StateError, StateStore

log = logging.getLogger(__name__)


class CatchUps:
    """The catch-ups of one daemon. `key` turns a subject into its scheduler key (the grid is
    the key's). Thread-safe."""

    def __init__(self, misfire_grace: timedelta, key: Callable[[str], str] = job_key) -> None:
        self._grace = misfire_grace
        self._key = key
        self._pending: dict[tuple[str, datetime], datetime] = {}  # off-grid run -> since
        self._lock = threading.Lock()

    def plan(
        self,
        state: StateStore | None,
        schedules: Mapping[str, Schedule],
        names: Iterable[str],
        now: datetime,
    ) -> dict[str, First | CatchUp]:
        """How each view of `names` first runs: a `CatchUp` unless a run was recorded at or
        after its latest scheduled time (all catch up when `state` is None or does not
        answer)."""
        last = last_runs(state)
        firsts: dict[str, First | CatchUp] = {}
        for name in names:
            key, schedule = self._key(name), schedules[name]
            recorded = None if last is None else last.get(name)
            firsts[name] = self._first(key, schedule, now, recorded)
            self._remember(name, key, schedule, firsts[name])
        caught_up = sum(isinstance(first, CatchUp) for first in firsts.values())
        if caught_up:
            log.info(
                "%d feature views and models catch up within %.0f s: no run recorded since "
                "their latest scheduled time",
                caught_up,
                CATCH_UP_SPREAD.total_seconds(),
            )
        return firsts

    def ran_elsewhere(self, state: StateStore, name: str, scheduled_at: datetime) -> bool:
        """Whether the run of `name` at `scheduled_at` is a catch-up handed its own time of a
        view that a replica claimed a run of since its latest scheduled time (then it is not
        run). A database that does not answer lets it run: a duplicate, never a missed run."""
        with self._lock:
            since = self._pending.pop((name, scheduled_at), None)
        if since is None:
            return False
        try:
            claims = state.run_claims(name, since)
        except StateError as exc:
            log.debug("reading the claims of %s failed: %s", spelled(name), exc)
            return False
        if all(claim.scheduled_at == scheduled_at for claim in claims):
            return False
        log.info(
            "catch-up run of %s at %s not run: another replica ran it since %s",
            spelled(name),
            scheduled_at.isoformat(),
            since.isoformat(),
        )
        return True

    def _first(
        self, key: str, schedule: Schedule, now: datetime, recorded: datetime | None
    ) -> First | CatchUp:
        latest = previous_time(key, schedule, now)
        if recorded is not None and latest is not None and recorded >= latest:
            return First.NEXT
        return catch_up(key, schedule, now, self._grace) or First.NEXT

    def _remember(self, name: str, key: str, schedule: Schedule, first: First | CatchUp) -> None:
        if not isinstance(first, CatchUp) or first.scheduled_at != first.fire_at:
            return  # on the grid: the claim on its time decides
        since = previous_time(key, schedule, first.fire_at)
        if since is not None:
            with self._lock:
                self._pending[(name, first.scheduled_at)] = since


def last_runs(state: StateStore | None) -> dict[str, datetime] | None:
    """When each view and model last ran, as recorded, by subject; None when there is no state
    database to ask or it does not answer."""
    if state is None:
        return None
    try:
        return state.last_run_by_subject()
    except StateError as exc:
        log.warning("the last run of each view cannot be read, every view catches up: %s", exc)
        return None
