"""`Generation`: one good configuration of the daemon and the app built from it, held by the
runs that use it and closed (stores, state database, alerting) once retired and no longer in use.
A reload retires the old generation at once; its last run closes it."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from monitor.app import App
from monitor.daemon.jobs import Job, jobs_of
from monitor.daemon.notify import AlertRuntime
from monitor.loader import Loaded

log = logging.getLogger(__name__)


@dataclass
class Generation:
    """One good configuration and its app, and what it runs (`jobs`, by subject); closed once
    retired and no longer in use."""

    loaded: Loaded
    app: App
    alerts: AlertRuntime | None = None  # None: no state database, nothing is alerted
    jobs: dict[str, Job] = field(init=False)
    _users: int = 0
    _retired: bool = False
    _closed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.jobs = jobs_of(self.loaded)

    def acquire(self) -> None:
        with self._lock:
            self._users += 1

    def release(self) -> None:
        with self._lock:
            self._users -= 1
        self._close_if_done()

    def retire(self) -> None:
        with self._lock:
            self._retired = True
        self._close_if_done()

    def _close_if_done(self) -> None:
        with self._lock:
            if not self._retired or self._users > 0 or self._closed:
                return
            self._closed = True
        if self.alerts is not None:
            self.alerts.stop()
        self.app.close()
        log.info("closed the stores of the configuration loaded from %s", self.loaded.path)
