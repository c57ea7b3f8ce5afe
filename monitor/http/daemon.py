"""`DaemonSidecar`: the sidecar as `monitor.daemon.service.Daemon` drives it (its `Sidecar` protocol:
`start(daemon)` once the first configuration is loaded, `stop()` last).

Each request reads the state database of the daemon's current configuration through
`daemon.using()`, so a reload (which builds a new app and state store) is followed at once and
a store is never closed under a request. The listener, the token, the allowed hosts and the key
of report links are those of the configuration the daemon started with: changing them needs a
restart.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol

from monitor.config import HttpConfig, parse_listen
from monitor.daemon.recorder import StateHealth
from monitor.daemon.reloads import ReloadOutcome
from monitor.http.app import MetricsExposition, Readiness, Services, create_app
from monitor.http.links import ReportLinks
from monitor.http.server import Sidecar
from monitor.metrics import StateSource
from monitor.state import StateStore


class HasState(Protocol):
    @property
    def state(self) -> StateStore | None: ...


class Serving(Protocol):
    """What the sidecar asks of the running daemon (`monitor.daemon.service.Daemon` has it)."""

    @property
    def ready(self) -> bool: ...

    def state_health(self) -> StateHealth: ...
    @property
    def last_reload(self) -> ReloadOutcome | None: ...

    def using(self) -> contextlib.AbstractContextManager[HasState]: ...


def daemon_state(daemon: Serving) -> StateSource:
    """The state database of the daemon's current configuration, held open while in use."""

    @contextlib.contextmanager
    def current() -> Iterator[StateStore | None]:
        with daemon.using() as app:
            yield app.state

    return current


def has_configuration(daemon: Serving) -> bool:
    try:
        with daemon.using():
            return True
    except RuntimeError:  # not started, or stopped
        return False


class DaemonSidecar:
    """Serves `http.listen` for a daemon: metrics from `metrics`, reports and the API from the
    daemon's state database; report links signed by `links` open without the token."""

    def __init__(
        self, http: HttpConfig, metrics: MetricsExposition, links: ReportLinks | None = None
    ) -> None:
        self._http = http
        self._metrics = metrics
        self._links = links
        self._server: Sidecar | None = None

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("the sidecar is not started")
        return self._server.address

    def start(self, daemon: Serving) -> None:
        """Bind and serve; raises `ListenError` when the address cannot be bound."""
        token = self._http.token
        services = Services(
            metrics=self._metrics,
            state=daemon_state(daemon),
            readiness=Readiness(
                config_loaded=lambda: has_configuration(daemon),
                scheduler_running=lambda: daemon.ready,
                state_writable=lambda: daemon.state_health().describe(),
                last_reload=lambda: daemon.last_reload,
            ),
            token=None if token is None else token.get_secret_value(),
            listen_host=parse_listen(self._http.listen)[0],
            allowed_hosts=self._http.allowed_hosts,
            links=self._links,
        )
        server = Sidecar(create_app(services), self._http.listen)
        server.start()
        self._server = server

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
