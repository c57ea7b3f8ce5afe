"""Daemon replicas share the check files: each scheduled run is claimed in the state database
before it is probed, so that every run of every view runs once while any replica lives. A
model's runs are claimed the same way: "view" below is a run's subject (a view's name, or
`model:<name>`).

Every replica computes the same scheduled times (`monitor.daemon.scheduler` lays `every` intervals on
an epoch-anchored grid), so at each time each replica asks `StateStore.claim_run`, and exactly
one wins; the others skip the run quietly (debug log, `run_claimed_elsewhere`). The winner holds
a lease (`lease`, 5 s by default) that a background thread renews every quarter lease while the
run goes, and marks the claim finished when it ends.

A replica that dies stops renewing. Its future runs were never held (they are claimed at their
time by a live replica); the run it was doing is found by the others' `tend`, which looks for
abandoned claims (lease ended, not finished) every quarter lease: one that is still within the
misfire grace is taken over (a conditional update one replica wins) and run again from the
start; an older one is declared lost, once, by one replica (error log, `run_lost`).

When the state database does not answer a claim, the run is not lost: the replica runs it
without a claim (`Verdict.UNCLAIMED`) unless the last claim it saw of that view was won by
another replica. So during an outage each replica goes on running the views it last held, and a
view no replica here has seen claimed elsewhere (a single daemon's every view; a view added
during the outage) is run by every replica: a run may be made twice, never missed.

    claims = RunClaims(holder_id(), lease=timedelta(seconds=5), misfire_grace=..., observer=...)
    verdict = claims.claim(state, "user_stats", scheduled_at)
    if verdict is Verdict.HELD:         # ours: run it, then finish the claim
        try: ...run... finally: claims.finish(state, "user_stats", scheduled_at)
    elif verdict is Verdict.UNCLAIMED:  # the database did not answer: run it, record it later
    for view, at in claims.tend(state, views, now):      # on the heartbeat thread
        ...run the taken-over run...
"""

from __future__ import annotations

import enum
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta

from monitor.daemon.observer import RunObserver
from monitor.daemon.scheduler import spelled
from monitor.state import ClaimOutcome, StateError, StateStore

log = logging.getLogger(__name__)

Run = tuple[str, datetime]  # a subject (a feature view, `model:<name>`) and a scheduled time


class Verdict(enum.Enum):
    HELD = "held"  # claimed here: run it, then finish the claim
    UNCLAIMED = "unclaimed"  # the state database did not answer: run it without a claim
    NOT_OURS = "not ours"  # another replica runs it


def holder_id() -> str:
    """This process among the replicas: host name, process id, and a random part (a pid is
    reused, and containers all run as pid 1)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class RunClaims:
    """The claims of one daemon process (`holder`). Thread-safe; never raises: a state database
    that cannot be reached is logged, and the run it could not claim is run unclaimed when this
    replica last held its view (or never saw it claimed elsewhere)."""

    def __init__(
        self,
        holder: str,
        lease: timedelta,
        misfire_grace: timedelta,
        observer: RunObserver,
    ) -> None:
        if lease < timedelta(seconds=1):
            raise ValueError(f"expected a claim lease of 1s or more, found {lease}")
        self.holder = holder
        self.lease = lease
        self._grace = misfire_grace
        self._observer = observer
        self._held: set[Run] = set()
        self._mine: dict[str, bool] = {}  # view -> whether its last claim seen was won here
        self._lock = threading.Lock()

    def claim(self, state: StateStore, view: str, scheduled_at: datetime) -> Verdict:
        """Whether this process runs `view` at `scheduled_at` (when HELD it must `finish` it)."""
        try:
            outcome = state.claim_run(
                view, scheduled_at, self.holder, datetime.now(UTC), self.lease
            )
        except StateError as exc:  # fail open: run what this replica last held
            return self._unanswered(view, scheduled_at, exc)
        with self._lock:
            self._mine[view] = outcome is not ClaimOutcome.ELSEWHERE
        if outcome is ClaimOutcome.ELSEWHERE:
            log.debug("run of %s at %s claimed elsewhere", spelled(view), scheduled_at.isoformat())
            self._observer.run_claimed_elsewhere(view, scheduled_at)
            return Verdict.NOT_OURS
        if outcome is ClaimOutcome.TAKEN_OVER:
            _took_over(view, scheduled_at)
        self.hold((view, scheduled_at))
        return Verdict.HELD

    def _unanswered(self, view: str, scheduled_at: datetime, exc: StateError) -> Verdict:
        with self._lock:
            elsewhere = self._mine.get(view) is False
        if elsewhere:
            log.warning(
                "run of %s scheduled at %s left to the replica that last held it: its "
                "claim failed: %s",
                spelled(view),
                scheduled_at.isoformat(),
                exc,
            )
            return Verdict.NOT_OURS
        log.warning(
            "run of %s scheduled at %s runs without a claim: the claim failed: %s",
            spelled(view),
            scheduled_at.isoformat(),
            exc,
        )
        return Verdict.UNCLAIMED

    def hold(self, run: Run) -> None:
        with self._lock:
            self._held.add(run)

    def drop(self, run: Run) -> None:
        """Stop renewing a claim this process will not run (stopping): it ends with its lease
        and another replica takes it over."""
        with self._lock:
            self._held.discard(run)

    def finish(self, state: StateStore, view: str, scheduled_at: datetime) -> None:
        """Mark the claim done; a claim taken away meanwhile is logged (the run may have run
        twice: the lease ended while it was going, which a renewal should prevent)."""
        self.drop((view, scheduled_at))
        try:
            mine = state.finish_run_claim(view, scheduled_at, self.holder, datetime.now(UTC))
        except StateError as exc:
            log.error("finishing the claim of %s failed: %s", spelled(view), exc)
            return
        if not mine:
            log.warning(
                "run of %s scheduled at %s ended after its claim was taken over by "
                "another replica (the lease of %s ran out): it may have run twice",
                spelled(view),
                scheduled_at.isoformat(),
                self.lease,
            )

    def tend(self, state: StateStore, views: Collection[str], now: datetime) -> list[Run]:
        """Renew the leases of the runs going here, declare abandoned runs past their misfire
        grace lost, and take over the others of `views`: the runs returned are this process's
        to run now (and then `finish`). Raises `StateError`."""
        with self._lock:
            going = bool(self._held)
        if going:
            state.renew_run_claims(self.holder, now, self.lease)
        taken: list[Run] = []
        for claim in state.abandoned_run_claims(now):
            view, at = claim.feature_view, claim.scheduled_at
            if now - at > self._grace:
                if state.lose_run_claim(view, at, now):
                    log.error(
                        "run of %s scheduled at %s was lost: its holder %s stopped "
                        "renewing its claim, and no replica took it over within the misfire "
                        "grace of %s",
                        spelled(view),
                        at.isoformat(),
                        claim.holder,
                        self._grace,
                    )
                    self._observer.run_lost(view, at)
            elif view in views:
                outcome = state.claim_run(view, at, self.holder, now, self.lease)
                if outcome is ClaimOutcome.TAKEN_OVER:
                    _took_over(view, at)
                    with self._lock:
                        self._mine[view] = True
                    self.hold((view, at))
                    taken.append((view, at))
        return taken


def _took_over(view: str, scheduled_at: datetime) -> None:
    log.warning(
        "took over the run of %s scheduled at %s: its holder stopped renewing its claim",
        spelled(view),
        scheduled_at.isoformat(),
    )


class Ticker:
    """A thread that calls `tick()` every `interval` until stopped; what `tick` raises is
    logged, and the next tick comes as usual."""

    def __init__(self, name: str, interval: timedelta, tick: Callable[[], None]) -> None:
        self._interval = interval.total_seconds()
        self._tick = tick
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=self._interval + 5)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._tick()
            except Exception:  # the ticker's boundary: one bad tick must not end the thread
                log.exception("%s failed", self._thread.name)
