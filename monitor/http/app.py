"""The sidecar's ASGI application: `create_app(services) -> Starlette`.

    /                   redirects to /reports/ (for now: the sidecar's front page)
    /metrics            Prometheus exposition (open)
    /healthz            the process answers (open)
    /readyz             config loaded, state database reachable and writable, scheduler running;
                        the last reload, and why it failed (open)
    /reports/           index of recent runs           (token, when configured)
    /reports/{run_id}   the HTML report of a run, rendered from the state database (token,
                        or a signed link: ?expires=...&sig=..., see monitor.http.links)
    /api/v1/status      per view and model: last run, worst status (token)
    /api/v1/results     results history, filtered      (token)
    /api/v1/runs        recorded runs, newest first    (token)
    /api/v1/silences    GET list, POST create          (token; see monitor.http.silences)
    /api/v1/silences/{id}  DELETE: expire now          (token)

Every request first passes `monitor.http.guard.RequestGuard` (a known Host; state-changing
calls JSON-only and same-origin), then the bearer token. Everything the endpoints read is
injected through `Services`; nothing is global, so tests and the daemon build their own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from monitor.daemon.reloads import ReloadOutcome
from monitor.http.api import Api, notifications
from monitor.http.auth import BearerAuth
from monitor.http.guard import RequestGuard, allowed_names
from monitor.http.links import ReportLinks
from monitor.http.reports import Reports
from monitor.http.silences import SilenceApi
from monitor.metrics import StateSource
from monitor.state import StateError

log = logging.getLogger(__name__)

# Accept header in, (body, content type) out: monitor.metrics.Exposition.
MetricsExposition = Callable[[str | None], tuple[bytes, str]]


def _writable() -> str:
    return "ok"


def _no_reload() -> ReloadOutcome | None:
    return None


@dataclass(frozen=True)
class Readiness:
    """What `/readyz` asks besides reading the state database; each is called on every probe
    and must be cheap and must not raise. `state_writable`: `ok`, or why the last run could not
    be written (a database that reads but cannot write, full or corrupt, is not ready).
    `last_reload`: the daemon's last reload (None: none yet)."""

    config_loaded: Callable[[], bool]
    scheduler_running: Callable[[], bool]
    state_writable: Callable[[], str] = _writable
    last_reload: Callable[[], ReloadOutcome | None] = _no_reload


@dataclass(frozen=True)
class Services:
    """What the sidecar serves. `state` gives the state database of the moment (see
    `monitor.metrics.StateSource`); when it gives None the daemon runs without history: the
    JSON API and the reports index answer 503, and the sidecar is not ready. `token` None: no
    token. `listen_host` and `allowed_hosts`: the Host names answered besides the loopback
    ones (`http.listen`'s host, `http.allowed_hosts`). `links`: the signer of report links
    (`reports.link_key`), None when links are not signed."""

    metrics: MetricsExposition
    state: StateSource
    readiness: Readiness
    token: str | None = None
    listen_host: str = "127.0.0.1"
    allowed_hosts: tuple[str, ...] = ()
    links: ReportLinks | None = None


def readiness_reasons(services: Services) -> dict[str, str]:
    """Check name -> `ok` or the reason it is not ready."""
    checks: dict[str, str] = {}
    checks["config"] = "ok" if services.readiness.config_loaded() else "configuration not loaded"
    checks["state"] = _state_reason(services.state)
    if checks["state"] == "ok":
        checks["state"] = services.readiness.state_writable()
    checks["scheduler"] = (
        "ok" if services.readiness.scheduler_running() else "scheduler not running"
    )
    return checks


def _state_reason(source: StateSource) -> str:
    try:
        with source() as state:
            if state is None:
                return "state database unavailable"
            state.version()  # one cheap query
    except StateError as exc:
        log.warning("readiness: %s", exc)
        return "state database unreachable"
    except RuntimeError as exc:  # the daemon has no configuration yet, or no longer
        log.warning("readiness: %s", exc)
        return "state database unavailable"
    return "ok"


def create_app(services: Services) -> Starlette:
    """The sidecar's routes over `services`, behind the request guard, and the bearer token
    when one is set."""
    api = Api(services.state)
    reports = Reports(services.state)
    silences = SilenceApi(services.state)

    def metrics(request: Request) -> Response:
        body, content_type = services.metrics(request.headers.get("accept"))
        return Response(body, headers={"Content-Type": content_type})

    def healthz(_request: Request) -> Response:
        return PlainTextResponse("ok\n")

    def readyz(_request: Request) -> Response:
        checks = readiness_reasons(services)
        reasons = [reason for reason in checks.values() if reason != "ok"]
        body: dict[str, object] = {"status": "ready", "checks": checks}
        if reasons:
            body = {"status": "not ready", "reasons": reasons, "checks": checks}
        reload = services.readiness.last_reload()
        if reload is not None:
            # A failed reload is shown, but keeps the status: the last good configuration runs,
            # and featmon is deployed in its feature server's pod, which a 503 takes out of
            # service.
            body["reload"] = reload.as_json()
        return JSONResponse(body, status_code=503 if reasons else 200)

    def to_index(_request: Request) -> Response:
        return RedirectResponse("/reports/", status_code=308)

    def front(_request: Request) -> Response:  # temporary: the front page may become its own
        return RedirectResponse("/reports/", status_code=307)

    routes = [
        Route("/", front, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/reports", to_index, methods=["GET"]),
        Route("/reports/", reports.index, methods=["GET"]),
        Route("/reports/{run_id}", reports.run, methods=["GET"]),
        Route("/api/v1/status", api.status, methods=["GET"]),
        Route("/api/v1/results", api.results, methods=["GET"]),
        Route("/api/v1/runs", api.runs, methods=["GET"]),
        Route(
            "/api/v1/notifications",
            lambda request: notifications(services.state, request),
            methods=["GET"],
        ),
        Route("/api/v1/silences", silences.list, methods=["GET"]),
        Route("/api/v1/silences", silences.create, methods=["POST"]),
        Route("/api/v1/silences/{silence_id}", silences.expire, methods=["DELETE"]),
    ]
    names = allowed_names(services.listen_host, services.allowed_hosts)
    middleware = [Middleware(RequestGuard, names=names)]
    if services.token is not None or services.links is not None:
        middleware.append(Middleware(BearerAuth, token=services.token, links=services.links))
    return Starlette(routes=routes, middleware=middleware)
