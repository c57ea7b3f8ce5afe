"""`RequestGuard`: what a browser could otherwise forge against the sidecar, refused before any
endpoint (and before the bearer token) sees the request.

- Every request names a Host the sidecar answers to: localhost, 127.0.0.1, [::1], the listen
  address, the address the request arrived on, or one of `http.allowed_hosts` (any port).
  Another Host is 421: a DNS name rebound to 127.0.0.1 reaches no endpoint.
- A state-changing request (POST, PUT, PATCH, DELETE) is refused with 403 when its `Origin`,
  if sent, is not the sidecar's own (scheme http or https, the Host's name and port), or when
  `Sec-Fetch-Site` says `cross-site`; and with 415 unless its `Content-Type` is
  `application/json`, which no page on another origin can send without a CORS preflight that
  the sidecar never grants.

The checks are pure functions of the request's headers (`host_refusal`, `write_refusal`);
the middleware only answers their refusal, a JSON error body that says why.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
EVERY_INTERFACE = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 - names, not a bind
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Refusal:
    status_code: int
    error: str
    detail: str


def split_host(value: str) -> tuple[str, int | None] | None:
    """`name[:port]` or `[v6][:port]` -> (lower-case name without brackets or final dot, port);
    None when it is not a host."""
    text = value.strip().lower()
    if text.startswith("["):
        name, bracket, rest = text[1:].partition("]")
        if not bracket:
            return None
        colon, port_text = rest[:1], rest[1:]
        if rest and colon != ":":
            return None
    else:
        name, colon, port_text = text.partition(":")
    if not name or (colon and not (port_text.isascii() and port_text.isdigit())):
        return None
    return name.rstrip("."), int(port_text) if port_text else None


def allowed_names(listen_host: str, allowed_hosts: Iterable[str]) -> frozenset[str]:
    """The names a Host may carry, besides the address a request arrived on."""
    names = set(LOOPBACK)
    if listen_host not in EVERY_INTERFACE:
        names.add(listen_host.strip("[]").lower())
    names.update(host.strip("[]").lower().rstrip(".") for host in allowed_hosts)
    return frozenset(names)


def _same_address(name: str, local: str | None) -> bool:
    if local is None:
        return False
    try:
        return ipaddress.ip_address(name) == ipaddress.ip_address(local)
    except ValueError:
        return False


def host_refusal(host: str | None, names: frozenset[str], local: str | None) -> Refusal | None:
    """None when the Host header names the sidecar: one of `names`, or `local`, the address
    the request arrived on (an IP in the Host cannot be a rebound DNS name)."""
    if host is None:
        return Refusal(421, "misdirected request", "expected a Host header, found none")
    parsed = split_host(host)
    if parsed is not None and (parsed[0] in names or _same_address(parsed[0], local)):
        return None
    return Refusal(
        421,
        "misdirected request",
        f"the Host header {host[:255]!r} is not a name this sidecar answers to; "
        "an operator adds the name it is reached by to http.allowed_hosts",
    )


def _same_origin(origin: str, host: str) -> bool:
    """Whether `origin` is the sidecar's own: http or https, and the Host's name and port
    (the scheme's default port when the Host names none)."""
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return False
    own = split_host(host)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or own is None:
        return False
    if parts.path or parts.query or parts.fragment or parts.username is not None:
        return False
    default = DEFAULT_PORTS[parts.scheme]
    return (parts.hostname.rstrip("."), port or default) == (own[0], own[1] or default)


def write_refusal(headers: Headers) -> Refusal | None:
    """None when a state-changing request may go on: not cross-site, from the sidecar's own
    origin if from a browser at all, and declared JSON."""
    site = headers.get("sec-fetch-site")
    if site is not None and site.strip().lower() == "cross-site":
        return Refusal(
            403, "forbidden", "expected a same-origin request, found Sec-Fetch-Site: cross-site"
        )
    origin = headers.get("origin")
    if origin is not None and not _same_origin(origin, headers.get("host", "")):
        return Refusal(
            403,
            "forbidden",
            f"expected no Origin or the sidecar's own, found Origin: {origin[:255]!r}",
        )
    content_type = headers.get("content-type")
    media = (content_type or "").partition(";")[0].strip().lower()
    if media != "application/json":
        found = repr(content_type[:255]) if content_type is not None else "none"
        return Refusal(
            415,
            "unsupported media type",
            f"expected Content-Type: application/json, found {found}",
        )
    return None


class RequestGuard:
    """Answers a refused request itself; passes every other one to `app`."""

    def __init__(self, app: ASGIApp, names: frozenset[str]) -> None:
        self._app = app
        self._names = names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        server = scope.get("server")
        local = str(server[0]) if server else None
        refusal = host_refusal(headers.get("host"), self._names, local)
        if refusal is None and scope["method"] in WRITES:
            refusal = write_refusal(headers)
        if refusal is None:
            await self._app(scope, receive, send)
            return
        log.info(
            "refused %s %s: %d %s", scope["method"], scope["path"], refusal.status_code,
            refusal.detail,
        )  # fmt: skip
        body = {"error": refusal.error, "detail": refusal.detail}
        await JSONResponse(body, status_code=refusal.status_code)(scope, receive, send)
