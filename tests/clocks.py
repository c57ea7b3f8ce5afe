"""A clock that tests move by hand, for the scheduler (`monitor.daemon.scheduler.Clock`).

    clock = FakeClock(MONDAY)
    scheduler = Scheduler(clock=clock)
    ...
    clock.advance(timedelta(seconds=1))   # returns once the timer thread has seen the new time

`advance` waits until every thread sleeping on the clock has woken up, done what was due at the
new time and gone back to sleep, so that what a test asserts next is what the scheduler did by
then (the runs it submitted may still be going on the worker pool: wait for those by their own
events)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

SETTLE_TIMEOUT = 5.0  # seconds of real time a thread may take to see a new time


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self._now = start
        self._epoch = 0  # bumped by every move
        self._read: dict[threading.Thread, int] = {}  # thread -> epoch of the time it last read
        self._asleep: dict[threading.Thread, int | None] = {}  # sleeper -> epoch; None: awake
        self._changed = threading.Condition()

    def now(self) -> datetime:
        with self._changed:
            self._read[threading.current_thread()] = self._epoch
            return self._now

    def sleep(self, until: datetime | None, wake: threading.Event) -> None:
        me = threading.current_thread()
        with self._changed:
            epoch = self._read.get(me, -1)
            self._asleep[me] = epoch
            self._changed.notify_all()
            self._changed.wait_for(  # `wake` is an Event of its own: looked at every 5 ms
                lambda: (
                    wake.is_set()
                    or self._epoch != epoch
                    or (until is not None and self._now >= until)
                ),
                timeout=0.005,
            )
            self._asleep[me] = None

    def advance(self, by: timedelta) -> None:
        """Move the time forward by `by` and wait until the sleepers have seen it."""
        deadline = time.monotonic() + SETTLE_TIMEOUT
        with self._changed:
            self._now += by
            self._epoch += 1
            self._changed.notify_all()
            while not self._settled():
                assert time.monotonic() < deadline, "a sleeper did not see the new time"
                self._changed.wait(0.005)

    def _settled(self) -> bool:
        return all(e == self._epoch or not t.is_alive() for t, e in self._asleep.items())

    def advance_by_steps(
        self, total: timedelta, step: timedelta, idle: Callable[[], bool] = lambda: True
    ) -> None:
        """Move forward by `total` in moves of `step`, each once `idle()` holds (e.g. the
        scheduler has no run going: `lambda: not scheduler.going()`)."""
        moved = timedelta(0)
        while moved < total:
            self.advance(min(step, total - moved))
            moved += step
            assert eventually(idle), f"not idle {moved} after the first move"


def eventually(holds: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Whether `holds()` becomes true within `timeout` seconds of real time (for what the
    worker pool does, which the clock does not wait for)."""
    deadline = time.monotonic() + timeout
    while not holds():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True
