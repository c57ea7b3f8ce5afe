"""The daemon as `featmon run` deploys it: `build_daemon` wires Prometheus metrics and the HTTP
sidecar to a `Daemon` (`monitor.daemon.service`), and `serve` runs it until a signal: SIGHUP
reloads, SIGTERM or SIGINT stops it within its grace period.

    daemon = build_daemon(Path("config.yaml"), DaemonSettings(workers=8))
    sys.exit(serve(daemon))
"""

from __future__ import annotations

import contextlib
import logging
import queue
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

from monitor.config import warnings
from monitor.daemon.logqueue import queued_logging
from monitor.daemon.recorder import StateHealth
from monitor.daemon.service import Daemon, DaemonSettings
from monitor.http.links import ReportLinks
from monitor.loader import Loaded, load
from monitor.state import StateStore

log = logging.getLogger(__name__)


def serve(daemon: Daemon) -> int:
    """Run `daemon` until SIGTERM or SIGINT, reloading on SIGHUP; 0 when every run finished
    within the grace period, 1 otherwise. Call from the main thread. The log handlers run on a
    thread of their own meanwhile (`monitor.daemon.logqueue`)."""
    commands: queue.SimpleQueue[str] = queue.SimpleQueue()  # put() is safe in signal handlers

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        commands.put("reload" if signum == signal.SIGHUP else signal.Signals(signum).name)

    handled = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)
    previous = {signum: signal.signal(signum, on_signal) for signum in handled}
    with queued_logging():
        try:
            daemon.start()
            while True:
                try:
                    command = commands.get(timeout=1.0)
                except queue.Empty:
                    continue
                if command != "reload":
                    log.info("received %s: stopping", command)
                    break
                log.info("received SIGHUP: reloading")
                daemon.reload()
            return 0 if daemon.stop() else 1
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def build_daemon(
    path: Path, settings: DaemonSettings, load_config: Callable[[Path], Loaded] = load
) -> Daemon:
    """The daemon as `featmon run` deploys it: Prometheus metrics on a registry of its own, and
    the HTTP sidecar on `http.listen` of the configuration (read once here: changing the listen
    address needs a restart). `load_config` reads the configuration, at start and on every
    reload. Raises ConfigError when invalid."""
    # The web stack loads only for the daemon.
    from monitor.http import DaemonSidecar, daemon_state  # noqa: PLC0415 - the sidecar's web stack is imported only when the daemon starts
    from monitor.metrics import Exposition, LiveState, Metrics, new_registry  # noqa: PLC0415 - the sidecar's web stack is imported only when the daemon starts

    loaded = load_config(path)  # read once: `start` runs it, reloads read the files again
    config = loaded.config
    registry = new_registry()
    daemon: Daemon | None = None

    @contextlib.contextmanager
    def current_state() -> Iterator[StateStore | None]:
        if daemon is None:
            yield None
            return
        with daemon_state(daemon)() as state:
            yield state

    live = LiveState(
        health=lambda: StateHealth(True) if daemon is None else daemon.state_health(),
        measured=lambda: [] if daemon is None else daemon.measured(),
        configured=lambda: frozenset() if daemon is None else daemon.configured_checks(),
    )
    metrics = Metrics(registry, current_state, live)
    for warning in warnings(config):
        log.warning("%s", warning)
    sidecar = DaemonSidecar(
        config.http, Exposition(registry), ReportLinks.from_config(config.reports)
    )
    daemon = Daemon(
        path, settings, observer=metrics, sidecar=sidecar, load_config=load_config, loaded=loaded
    )
    return daemon
