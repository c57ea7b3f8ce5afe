"""Watching config.yaml and the check files for changes (the daemon reloads on one)."""

from __future__ import annotations

import glob
import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from monitor.loader import Loaded

log = logging.getLogger(__name__)

FileState = tuple[str, int, int]


def watched_files(loaded: Loaded) -> frozenset[FileState]:
    """config.yaml and every file its check globs match now, with mtime and size (-1 when
    missing): a different answer means a file was changed, added or removed."""
    base = loaded.path.resolve().parent
    paths = {loaded.path.resolve(), *(Path(f) for f in loaded.check_files)}
    for pattern in loaded.config.check_globs:
        found = glob.glob(pattern, root_dir=base, recursive=True)  # noqa: PTH207  (as the loader)
        paths.update(base / m for m in found)
    states: set[FileState] = set()
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            states.add((str(path), -1, -1))
            continue
        if path.is_file():
            states.add((str(path), stat.st_mtime_ns, stat.st_size))
    return frozenset(states)


class Watcher:
    """A thread that calls `changed()` when `look()` answers differently from the last time,
    and then the same for one more interval (so that a file being written is read whole)."""

    def __init__(
        self,
        look: Callable[[], frozenset[FileState]],
        interval: timedelta,
        changed: Callable[[], None],
    ) -> None:
        self._look = look
        self._interval = interval.total_seconds()
        self._changed = changed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="featmon-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=self._interval + 5)

    def _watch(self) -> None:
        last = self._look()
        pending: frozenset[FileState] | None = None
        while not self._stop.wait(self._interval):
            try:
                seen = self._look()
                if seen == last:
                    pending = None
                elif seen == pending:  # unchanged for one interval: the writer is done
                    last, pending = seen, None
                    self._changed()
                else:
                    pending = seen
            except Exception:  # the watcher's boundary: one bad poll must not end watching
                log.exception("watching the configuration files failed")
