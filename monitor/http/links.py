"""Signed report links: the link an alert carries opens that one run's report, without the
sidecar's bearer token, until it expires.

    links = ReportLinks(key, ttl=timedelta(days=30))
    links.url("https://featmon.example/reports/", run_id, now)
        # https://featmon.example/reports/<run_id>?expires=<unix seconds>&sig=<hex>
    links.verify(run_id, expires, sig, now)   # None when good, else why not

The signature is HMAC-SHA256 under `reports.link_key` over the run id and the expiry (so
neither can be changed), compared in constant time. Pure: the caller gives the time.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import quote, urlencode

from monitor.config import ReportsConfig

EXPIRES, SIG = "expires", "sig"
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class ReportLinks:
    """Signs and checks report links under `key` (bytes; never shown in a repr)."""

    key: bytes = field(repr=False)
    ttl: timedelta = timedelta(days=30)

    @classmethod
    def from_config(cls, reports: ReportsConfig) -> ReportLinks | None:
        """The links of `reports.link_key`, or None when it is unset."""
        if reports.link_key is None:
            return None
        return cls(reports.link_key.get_secret_value().encode("utf-8"), reports.link_ttl)

    def signature(self, run_id: str, expires: int) -> str:
        message = f"{run_id}\n{expires}".encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    def query(self, run_id: str, now: datetime) -> str:
        """`expires=...&sig=...` for a link made at `now`."""
        expires = int((now + self.ttl).timestamp())
        return urlencode({EXPIRES: expires, SIG: self.signature(run_id, expires)})

    def url(self, base_url: str, run_id: str, now: datetime) -> str:
        """The signed link of `run_id` under the public reports URL `base_url`."""
        return f"{base_url.rstrip('/')}/{quote(run_id, safe='')}?{self.query(run_id, now)}"

    def verify(self, run_id: str, expires: str, sig: str, now: datetime) -> str | None:
        """None when `sig` signs `run_id` until `expires` and that is not past; else the
        reason, in words that quote neither the signature nor the key."""
        if not (expires.isascii() and expires.isdigit()) or len(expires) > 12:
            return "expected expires to be a time in Unix seconds"
        if len(sig) != 64 or not set(sig) <= _HEX:
            return "expected sig to be 64 hexadecimal digits"
        good = self.signature(run_id, int(expires))
        if not hmac.compare_digest(good.encode("ascii"), sig.encode("ascii")):
            return "the signature does not match this report"
        if int(expires) <= now.timestamp():
            return "the link has expired"
        return None
