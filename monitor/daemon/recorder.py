"""`RunRecorder`: between a finished run and the state database. Probing never waits for the
state database: a run is written now when the database takes it, else kept in a bounded buffer
and written later, in the order the runs finished.

    recorder = RunRecorder(capacity=600, observer=metrics)
    recorder.record(state, run, claim)   # WRITTEN, BUFFERED or ELSEWHERE; never raises
    recorder.flush(state)                # on a timer: the buffer, oldest first, until one fails
    recorder.health()                    # writable?, since when not, why, how many wait

Once a write failed, later runs go behind the buffered ones without trying the database (a
database that hangs would otherwise hold every worker for its timeout): `flush` is what finds
the database back. A run that does not fit in the buffer is not recorded: the oldest buffered
run makes room for the newest (the newest says what is true now), and the one pushed out is
counted (`RunObserver.run_unrecorded`) and logged; nothing is dropped silently.

The recorder also keeps the latest result of every check it was handed, written or not, so that
`/metrics` shows what was measured even while the database cannot say it (`latest()`).
"""

from __future__ import annotations

import collections
import enum
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from checks.result import RunResult
from monitor.daemon.observer import RunObserver
from monitor.daemon.scheduler import spelled
from monitor.state import StateError, StateStore, StoredResult, stored_results

log = logging.getLogger(__name__)

Claim = tuple[str, str]  # (subject, holder): finished with the run, see record_run


class Recorded(enum.Enum):
    WRITTEN = "written"
    BUFFERED = "buffered"  # written by a later flush, or counted as unrecorded
    ELSEWHERE = "elsewhere"  # the claim was taken over: the replica that took it records it


@dataclass(frozen=True)
class StateHealth:
    """Whether the last write reached the state database; when not: since when, the reason,
    and how many runs wait in the buffer. `unrecorded`: runs dropped since the start."""

    writable: bool
    since: datetime | None = None
    reason: str | None = None
    buffered: int = 0
    unrecorded: int = 0

    def describe(self) -> str:
        """One line for `/readyz` and the logs."""
        if self.writable:
            return "ok"
        since = "" if self.since is None else f" since {self.since.isoformat()}"
        return (
            f"state database not writable{since}, {self.buffered} runs buffered, "
            f"{self.unrecorded} unrecorded: {self.reason}"
        )


@dataclass(frozen=True)
class _Pending:
    view: str  # the run's subject: a view's name, or `model:<name>`
    run: RunResult
    claim: Claim | None


def _utcnow() -> datetime:
    return datetime.now(UTC)


class RunRecorder:
    """Thread-safe. `capacity`: the most runs buffered (at least 1; `resize` on reload)."""

    def __init__(
        self,
        capacity: int,
        observer: RunObserver,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._capacity = _checked(capacity)
        self._observer = observer
        self._clock = clock
        self._buffer: collections.deque[_Pending] = collections.deque()
        self._latest: dict[str, StoredResult] = {}
        self._health = StateHealth(writable=True)
        self._lock = threading.Lock()  # guards the buffer, the latest results and the health
        self._flushing = threading.Lock()  # one flush at a time keeps the order

    def resize(self, capacity: int) -> None:
        """A new bound (a reload); runs beyond it are dropped, oldest first, and counted."""
        with self._lock:
            self._capacity = _checked(capacity)
            dropped = self._trim()
        self._dropped(dropped)

    def record(self, state: StateStore, view: str, run: RunResult, claim: Claim | None) -> Recorded:
        """Write `run` (finishing `claim` in the same transaction) or buffer it."""
        with self._lock:
            self._remember(run)
            behind = bool(self._buffer)
            if behind:
                dropped = self._push(_Pending(view, run, claim))
        if behind:
            self._dropped(dropped)
            return Recorded.BUFFERED
        try:
            mine = state.record_run(run, claim)
        except StateError as exc:
            with self._lock:
                self._down(exc)
                dropped = self._push(_Pending(view, run, claim))
            log.error(
                "run %s of %s buffered: the state database did not take it: %s",
                run.run_id,
                spelled(view),
                exc,
            )
            self._dropped(dropped)
            return Recorded.BUFFERED
        self._up(0)
        return Recorded.WRITTEN if mine else Recorded.ELSEWHERE

    def flush(self, state: StateStore) -> int:
        """Write buffered runs oldest first, stopping at the first failure; returns how many
        were written. Never raises."""
        written = 0
        with self._flushing:
            while True:
                with self._lock:
                    if not self._buffer:
                        break
                    head = self._buffer[0]
                try:
                    mine = state.record_run(head.run, head.claim)
                except StateError as exc:
                    with self._lock:
                        self._down(exc)
                    # logged once as an error when it went down; each retry is noise
                    log.debug("the state database is still not writable: %s", exc)
                    break
                with self._lock:
                    if self._buffer and self._buffer[0] is head:
                        self._buffer.popleft()
                    self._health = replace(self._health, buffered=len(self._buffer))
                written += 1
                if not mine:
                    log.warning(
                        "buffered run %s of %s not recorded: its claim was taken over by "
                        "another replica, which records its own run",
                        head.run.run_id,
                        spelled(head.view),
                    )
        if written:
            self._up(written)
        return written

    def health(self) -> StateHealth:
        with self._lock:
            return self._health

    def latest(self) -> list[StoredResult]:
        """The newest result of every check this process measured, by check id."""
        with self._lock:
            return [self._latest[check] for check in sorted(self._latest)]

    # -- under the lock ----------------------------------------------------------------------

    def _remember(self, run: RunResult) -> None:
        for result in stored_results(run):
            known = self._latest.get(result.check)
            if known is None or known.scheduled_at <= result.scheduled_at:
                self._latest[result.check] = result

    def _push(self, pending: _Pending) -> list[_Pending]:
        self._buffer.append(pending)
        return self._trim()

    def _trim(self) -> list[_Pending]:
        dropped: list[_Pending] = []
        while len(self._buffer) > self._capacity:
            dropped.append(self._buffer.popleft())
        unrecorded = self._health.unrecorded + len(dropped)
        self._health = replace(self._health, buffered=len(self._buffer), unrecorded=unrecorded)
        return dropped

    def _down(self, exc: StateError) -> None:
        since = self._health.since if not self._health.writable else self._clock()
        self._health = replace(
            self._health, writable=False, since=since, reason=exc.detail, buffered=len(self._buffer)
        )

    # -- outside the lock ---------------------------------------------------------------------

    def _up(self, written: int) -> None:
        with self._lock:
            if self._buffer:  # a direct write went through while older runs still wait
                return
            health = self._health
            self._health = StateHealth(True, unrecorded=health.unrecorded)
        if not health.writable:
            log.info(
                "the state database is writable again (not since %s): %d buffered runs written "
                "in order, %d unrecorded in all",
                health.since.isoformat() if health.since else "?",
                written,
                health.unrecorded,
            )

    def _dropped(self, dropped: list[_Pending]) -> None:
        for pending in dropped:
            log.error(
                "run %s of %s scheduled at %s is not recorded: the buffer of %d runs "
                "waiting for the state database is full",
                pending.run.run_id,
                spelled(pending.view),
                pending.run.scheduled_at.isoformat(),
                self._capacity,
            )
            self._observer.run_unrecorded(pending.view, pending.run.scheduled_at)


def _checked(capacity: int) -> int:
    if capacity < 1:
        raise ValueError(f"expected a buffer of 1 run or more, found {capacity}")
    return capacity
