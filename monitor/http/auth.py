"""The optional bearer token: everything but /metrics and the health endpoints asks for it,
except a signed report link, which opens its one report without it.

An ASGI middleware; the token is compared in constant time, and a refusal is a 401 carrying
`WWW-Authenticate: Bearer` (RFC 6750) that never echoes what was sent. A request for
`/reports/{run_id}` that carries `expires` or `sig` is judged by its signature alone
(`monitor.http.links`): a good one is let through, any other is 403 and never falls back to the
token.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from starlette.datastructures import Headers, QueryParams
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from monitor.http.links import EXPIRES, SIG, ReportLinks
from monitor.http.reports import error_page

log = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/metrics", "/healthz", "/readyz"})
REPORTS = "/reports/"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def link_refusal(
    path: str, query: QueryParams, links: ReportLinks | None, now: datetime
) -> str | None:
    """Why the signed link `path?query` does not open (None: it does). Only called for a
    request that carries `expires` or `sig`."""
    run_id = path.removeprefix(REPORTS)
    if links is None:
        return "this sidecar signs no report links"
    if not path.startswith(REPORTS) or not run_id or "/" in run_id:
        return "a signed link opens one run's report, /reports/{run_id}"
    if len(query.getlist(EXPIRES)) != 1 or len(query.getlist(SIG)) != 1:
        return f"expected one {EXPIRES} and one {SIG} parameter"
    return links.verify(run_id, query[EXPIRES], query[SIG], now)


def presented_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (the scheme is case-insensitive),
    or None for a missing header or another scheme."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class BearerAuth:
    """Lets a request through to `app` when it needs no token, carries `token`, or is a report
    link signed by `links`. `token` None: only signed links are checked."""

    def __init__(
        self,
        app: ASGIApp,
        token: str | None,
        links: ReportLinks | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if token is not None and not token.strip():
            raise ValueError("expected a non-empty bearer token, found an empty one")
        self._app = app
        self._token = None if token is None else token.encode("utf-8")
        self._links = links
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self._app(scope, receive, send)
            return
        query = QueryParams(scope["query_string"])
        if EXPIRES in query or SIG in query:
            await self._signed(scope, receive, send, query)
            return
        given = presented_token(Headers(scope=scope).get("authorization"))
        if self._token is None or (
            given is not None and hmac.compare_digest(given.encode("utf-8"), self._token)
        ):
            await self._app(scope, receive, send)
            return
        challenge = 'Bearer realm="featmon"'
        if given is not None:
            challenge += ', error="invalid_token"'
        log.info("refused %s %s: %s", scope["method"], scope["path"], _why(given))
        response = JSONResponse(
            {"error": "unauthorized", "detail": _why(given)},
            status_code=401,
            headers={"WWW-Authenticate": challenge},
        )
        await response(scope, receive, send)

    async def _signed(self, scope: Scope, receive: Receive, send: Send, query: QueryParams) -> None:
        refused = link_refusal(scope["path"], query, self._links, self._clock())
        if refused is None:
            await self._app(scope, receive, send)
            return
        log.info("refused the report link %s: %s", scope["path"], refused)
        page = error_page(403, "Link refused", f"This report link does not open: {refused}.")
        await page(scope, receive, send)


def _why(given: str | None) -> str:
    if given is None:
        return "expected an Authorization: Bearer <token> header, found none"
    return "the bearer token does not match"
