"""The HTTP boundary of the senders: the one client they share, one POST with its timeout, and
the mapping of what can go wrong to `DeliveryFailed`.

    httpx.TimeoutException          -> retryable  (no answer within the receiver's timeout)
    httpx.UnsupportedProtocol,
    httpx.InvalidURL                -> permanent  (the configured URL cannot work)
    httpx.RequestError (the rest)   -> retryable  (refused, reset, DNS, TLS, protocol)
    HTTP 408, 429, 5xx              -> retryable, with `Retry-After` (seconds or HTTP-date)
    any other status a sender does not accept -> permanent

Secrets live in URLs (a Slack webhook's path) and bodies (a routing key): no message, log line or
exception made here quotes a URL, and what a receiver answers is scrubbed of the secrets before
it becomes a reason. httpx itself logs every request with its full URL at INFO; the filter that
`new_client` installs on the `httpx` logger keeps only scheme, host and port.
"""

from __future__ import annotations

import email.utils
import logging
import math
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

import httpx

from alerts.errors import DeliveryFailed
from checks.secrets import scrub

log = logging.getLogger(__name__)

USER_AGENT = "featmon"
RETRYABLE_4XX = frozenset({408, 429})


def new_client() -> httpx.Client:
    """The client that `build_app` creates once and hands to every sender; the caller closes it
    (`with new_client() as client: ...`). Redirects are not followed: a receiver that redirects
    a POST is misconfigured, and following it could carry a secret body elsewhere."""
    redact_request_logs()
    return httpx.Client(headers={"User-Agent": USER_AGENT}, follow_redirects=False)


class _RedactURLs(logging.Filter):
    """Rewrites every `httpx.URL` argument of a log record to scheme://host:port/…"""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redacted(arg) if isinstance(arg, httpx.URL) else arg for arg in record.args
            )
        return True


_REDACT = _RedactURLs()


def redact_request_logs() -> None:
    """Install the URL filter on httpx's logger (idempotent: a logger keeps a filter once)."""
    logging.getLogger("httpx").addFilter(_REDACT)


def redacted(url: httpx.URL | str) -> str:
    """`https://hooks.slack.com/…`: where a request went, without path, query or user info."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "<invalid URL>"
    port = f":{parsed.port}" if parsed.port is not None else ""
    rest = "/…" if parsed.raw_path not in (b"", b"/") else "/"
    return f"{parsed.scheme}://{parsed.host}{port}{rest}"


def post(
    client: httpx.Client,
    receiver: str,
    url: str,
    *,
    content: bytes,
    timeout: timedelta,
    headers: Mapping[str, str] | None = None,
    secrets: Iterable[str] = (),
) -> httpx.Response:
    """POST a JSON body; the response, whatever its status, or `DeliveryFailed` when none came.
    Logs one line with the outcome."""
    seconds = timeout.total_seconds()
    started = time.monotonic()
    try:
        response = client.post(
            url,
            content=content,
            headers={"Content-Type": "application/json", **(headers or {})},
            timeout=seconds,
        )
    except httpx.TimeoutException as exc:
        failed = DeliveryFailed(receiver, f"no answer within {seconds:g}s", permanent=False)
        _log_failure(failed, started)
        raise failed from exc
    except (httpx.UnsupportedProtocol, httpx.InvalidURL):
        # Raised from None: httpx's own message may quote the URL, which can be the secret.
        failed = DeliveryFailed(receiver, "the URL is not a valid http(s) URL", permanent=True)
        _log_failure(failed, started)
        raise failed from None
    except httpx.RequestError as exc:
        detail = scrub(str(exc) or type(exc).__name__, secrets)
        failed = DeliveryFailed(receiver, f"no connection: {detail}", permanent=False)
        _log_failure(failed, started)
        raise failed from exc
    log.info(
        "receiver %r: HTTP %d from %s in %.0f ms",
        receiver,
        response.status_code,
        response.url.host,
        (time.monotonic() - started) * 1000,
    )
    return response


def _log_failure(failed: DeliveryFailed, started: float) -> None:
    elapsed = (time.monotonic() - started) * 1000
    log.info("receiver %r: %s after %.0f ms", failed.receiver, failed.reason, elapsed)


def failure(
    receiver: str,
    response: httpx.Response,
    detail: str,
    *,
    retryable: frozenset[int] = RETRYABLE_4XX,
    default_retry_after: float | None = None,
    now: datetime | None = None,
) -> DeliveryFailed:
    """The failure a status means: 5xx and `retryable` 4xx can succeed later (after the
    receiver's `Retry-After`, else `default_retry_after` for a 429); the rest never will.
    `detail` is what the receiver said, already scrubbed."""
    status = response.status_code
    reason = f"HTTP {status}: {detail}" if detail else f"HTTP {status}"
    if status >= 500 or status in retryable:
        hint = parse_retry_after(response.headers.get("Retry-After"), now or datetime.now(UTC))
        if hint is None and status == 429:
            hint = default_retry_after
        return DeliveryFailed(receiver, reason, permanent=False, retry_after=hint)
    return DeliveryFailed(receiver, reason, permanent=True)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a `Retry-After` value: delay-seconds (`120`) or an HTTP-date
    (`Wed, 21 Oct 2026 07:28:00 GMT`, counted from `now`); never negative; None when absent or
    unreadable (RFC 9110, section 10.2.3)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def excerpt(response: httpx.Response, secrets: Iterable[str] = (), limit: int = 300) -> str:
    """What the receiver said, on one line, at most `limit` characters, without the secrets."""
    try:
        text = response.text
    except (UnicodeDecodeError, LookupError):
        text = response.content.decode("utf-8", "replace")
    return one_line(text, secrets, limit)


def one_line(text: str, secrets: Iterable[str] = (), limit: int = 300) -> str:
    """`text` on one printable line, without the secrets, cut to `limit` characters."""
    line = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    line = scrub(line, secrets)
    return line if len(line) <= limit else line[: limit - 1] + "…"
