"""The optional bearer token: everything but /metrics and the health endpoints asks for it.

An ASGI middleware; the token is compared in constant time, and a refusal is a 401 carrying
`WWW-Authenticate: Bearer` (RFC 6750) that never echoes what was sent.
"""

from __future__ import annotations

import hmac
import logging

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/metrics", "/healthz", "/readyz"})


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
    """Lets a request through to `app` when it needs no token or carries `token`."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        if not token:
            raise ValueError("expected a non-empty bearer token, found an empty one")
        self._app = app
        self._token = token.encode("utf-8")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self._app(scope, receive, send)
            return
        given = presented_token(Headers(scope=scope).get("authorization"))
        if given is not None and hmac.compare_digest(given.encode("utf-8"), self._token):
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


def _why(given: str | None) -> str:
    if given is None:
        return "expected an Authorization: Bearer <token> header, found none"
    return "the bearer token does not match"
