"""Notifications waiting in memory for an alert store that cannot take them: the alert pipeline
adds each one it makes while the store is down, the delivery worker sends them from here (before
it looks at the outbox), and the pipeline hands them all to the outbox once the store is back
(`Standby.hand_over`): those sent as delivered, so they are not sent again.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from alerts.model import Notification
from alerts.stored import NewNotification


@dataclass
class Waiting:
    """One notification held in memory, and how its sending goes."""

    notification: Notification
    row: NewNotification
    next_attempt_at: datetime
    attempts: int = 0
    delivered_at: datetime | None = None
    dead: bool = False  # given up: logged and counted, not written to the outbox


class Standby:
    """Notifications waiting in memory for a state database that cannot take them. Thread-safe:
    a send and a hand-over never overlap (the lock is held across both; a hand-over does not
    wait for a send, it is tried again at the next alerting step). `move_to` gives them to the
    standby of a reloaded configuration."""

    def __init__(self) -> None:
        self._waiting: list[Waiting] = []
        self._lock = threading.Lock()

    def add(self, notification: Notification, row: NewNotification) -> None:
        with self._lock:
            if all(w.row.dedup_key != row.dedup_key for w in self._waiting):
                self._waiting.append(Waiting(notification, row, row.created_at))

    def __len__(self) -> int:
        with self._lock:
            return len(self._waiting)

    def hand_over(self, write: Callable[[tuple[NewNotification, ...]], None]) -> int | None:
        """Give every notification waiting here to `write` (the outbox), sent ones with their
        delivery time; forgotten here once `write` returns, kept when it raises. None, and
        nothing done, while a send is going."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            rows = tuple(
                dataclasses.replace(w.row, delivered_at=w.delivered_at) for w in self._waiting
            )
            write(rows)
            self._waiting.clear()
        finally:
            self._lock.release()
        return len(rows)

    def move_to(self, other: Standby) -> None:
        """Hand every notification waiting here to `other` (a reload's new standby)."""
        with self._lock:
            waiting, self._waiting = self._waiting, []
        with other._lock:
            known = {w.row.dedup_key for w in other._waiting}
            other._waiting.extend(w for w in waiting if w.row.dedup_key not in known)

    def send_due(self, attempt: Callable[[Waiting], datetime | None], now: datetime) -> None:
        """Attempt every due notification not yet sent; `attempt` returns the time of the next
        attempt, or None when done with it (sent, or given up)."""
        with self._lock:
            for waiting in self._waiting:
                if waiting.delivered_at is None and waiting.next_attempt_at <= now:
                    waiting.attempts += 1
                    again = attempt(waiting)
                    if again is not None:
                        waiting.next_attempt_at = again
            self._waiting = [w for w in self._waiting if not w.dead]
