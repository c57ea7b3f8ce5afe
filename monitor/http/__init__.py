"""The daemon's HTTP sidecar: Prometheus metrics, health and readiness, HTML reports and the
JSON API. This package is the only importer of the web framework (Starlette) and the server
(uvicorn); the metrics arrive as a callable from `monitor.metrics`.

With the daemon (`monitor.daemon.service.Daemon` calls `sidecar.start(daemon)` and `sidecar.stop()`):

    registry = CollectorRegistry()
    metrics = Metrics(registry, lambda: daemon_state(daemon)())   # late-bound: daemon below
    links = ReportLinks.from_config(config.reports)                 # None: links unsigned
    sidecar = DaemonSidecar(config.http, Exposition(registry), links)
    daemon = Daemon(path, settings, observer=metrics, sidecar=sidecar)

On its own (tests, tools): `Sidecar(create_app(Services(...)), listen)` with `start()`/`stop()`;
`start()` raises `ListenError` when the address cannot be bound.
"""

from monitor.http.app import Readiness, Services, create_app, readiness_reasons
from monitor.http.daemon import DaemonSidecar, Serving, daemon_state
from monitor.http.server import ListenError, Sidecar

__all__ = [
    "DaemonSidecar",
    "ListenError",
    "Readiness",
    "Services",
    "Serving",
    "Sidecar",
    "create_app",
    "daemon_state",
    "readiness_reasons",
]
