"""Slack incoming webhooks: one Block Kit message per notification, with a plain `text` fallback
for notifications and clients that cannot show blocks.

The message: a header (status, worst severity, the feature view or model), a section of facts
(at most 10 fields: the feature view, model, owner and store when the alerts share one), one
section per alert (what failed, the measured value against its threshold, formatted by
alerts/format.py), "and N more" past what 50 blocks hold, and a button to the report. Every
text is cut to Slack's limits (header 150, section 3000, field 2000, button 75 characters; URLs
3000) so a long name never makes Slack refuse the message with `invalid_blocks`.

Slack answers 200 `ok`; 400, 403, 404 and 410 with an error string (`invalid_payload`,
`invalid_blocks`, `action_prohibited`, `channel_not_found`, `channel_is_archived`, ...) are
permanent; 429 carries `Retry-After`; 5xx is retryable. Slack allows about one message per second
per webhook: a `RateLimiter` paces this sender, and after a 429 refuses to send until the
`Retry-After` has passed (continuing to send while rate limited risks the webhook).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable

import httpx

from alerts.abc import Sender
from alerts.config import SlackReceiver
from alerts.errors import DeliveryFailed
from alerts.format import format_time
from alerts.model import AlertEvent, AlertState, Notification, about
from alerts.senders.content import (
    JSONObject,
    deliverable,
    measured,
    report_url,
    status_of,
    subject,
    truncate,
    worst_severity,
)
from alerts.senders.transport import excerpt, failure, post

log = logging.getLogger(__name__)

MAX_BLOCKS = 50
MAX_HEADER_TEXT = 150
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_BUTTON_TEXT = 75
MAX_URL = 3000
MAX_FALLBACK_TEXT = 3000  # Slack cuts `text` at 40,000; a notification preview needs far less
ICONS = {"firing": ":red_circle:", "resolved": ":large_green_circle:"}


class RateLimiter:
    """Paces sends to one webhook: at most `per_second`, spaced evenly, and none at all while a
    `Retry-After` runs. Thread-safe; the clock is monotonic and, with `sleep`, injectable."""

    def __init__(
        self,
        per_second: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._interval = 1.0 / per_second
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = -math.inf
        self._blocked_until = -math.inf

    def acquire(self) -> float:
        """Wait for this sender's turn and return 0.0; or, inside a `Retry-After`, wait for
        nothing and return the seconds it still runs."""
        with self._lock:
            now = self._clock()
            if self._blocked_until > now:
                return self._blocked_until - now
            slot = max(now, self._next)
            self._next = slot + self._interval
        if slot > now:
            self._sleep(slot - now)
        return 0.0

    def block(self, seconds: float) -> None:
        """Send nothing for `seconds` (the receiver asked so)."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._clock() + seconds)


class SlackSender(Sender):
    def __init__(
        self,
        name: str,
        settings: SlackReceiver,
        client: httpx.Client,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.name = name
        self._settings = settings
        self._client = client
        self._limiter = limiter or RateLimiter(settings.max_per_second)

    def __repr__(self) -> str:
        return f"SlackSender(name={self.name!r})"

    def send(self, notification: Notification) -> None:
        alerts = deliverable(notification.alerts, self._settings.send_resolved)
        if not alerts:
            log.info("receiver %r: nothing to send (resolved only, send_resolved off)", self.name)
            return
        body = json.dumps(slack_message(notification, alerts), ensure_ascii=False).encode()
        blocked = self._limiter.acquire()
        if blocked:
            reason = f"Slack asked to wait; {blocked:.1f}s of its Retry-After remain"
            raise DeliveryFailed(self.name, reason, permanent=False, retry_after=blocked)
        url = self._settings.webhook_url.get_secret_value()
        response = post(
            self._client,
            self.name,
            url,
            content=body,
            timeout=self._settings.timeout,
            secrets=[url],
        )
        said = excerpt(response, [url])
        if response.status_code == 200 and said == "ok":
            return
        if response.status_code == 200:
            raise DeliveryFailed(self.name, f"HTTP 200 without `ok`: {said}", permanent=True)
        failed = failure(self.name, response, said)
        if response.status_code == 429 and failed.retry_after:
            self._limiter.block(failed.retry_after)
        raise failed


def slack_message(notification: Notification, alerts: list[AlertEvent]) -> JSONObject:
    """The webhook body: `text` (fallback) and at most `MAX_BLOCKS` blocks."""
    ordered = sorted(alerts, key=_order)
    status = status_of(ordered)
    title = f"{status.upper()} · {worst_severity(ordered)} · {_subjects(ordered)}"
    link = report_url(ordered[0], notification)
    blocks: list[JSONObject] = [
        {"type": "header", "text": _plain(f"{ICONS[status]} {title}", MAX_HEADER_TEXT)},
        {"type": "section", "fields": _facts(notification, ordered)},
        {"type": "divider"},
    ]
    tail: list[JSONObject] = []
    if link and len(link) <= MAX_URL:
        button = {"type": "button", "text": _plain("Open report", MAX_BUTTON_TEXT), "url": link}
        tail.append({"type": "actions", "elements": [button]})
    room = MAX_BLOCKS - len(blocks) - len(tail)
    shown = ordered if len(ordered) <= room else ordered[: room - 1]
    blocks += [_alert_section(alert) for alert in shown]
    if hidden := len(ordered) - len(shown):
        more = _mrkdwn(f"… and {hidden} more alert{'s' * (hidden != 1)}", MAX_SECTION_TEXT)
        blocks.append({"type": "context", "elements": [more]})
    lines = [f"{title}"] + [f"• {_line(alert)}" for alert in ordered]
    text = truncate(escape("\n".join(lines)), MAX_FALLBACK_TEXT, marker=" …")
    return {"text": text, "blocks": blocks + tail}


def _order(alert: AlertEvent) -> tuple[bool, str, str]:
    """Firing before resolved, then by severity, then by name."""
    return (alert.state is AlertState.RESOLVED, alert.severity, subject(alert))


def _subjects(alerts: list[AlertEvent]) -> str:
    """`user_stats`, `model fraud`, `3 feature views`, `2 models`, `1 feature view, 1 model`."""
    named = {about(a.labels) for a in alerts} - {""}
    if len(named) == 1:
        return named.pop()
    views = {a.labels.get("feature_view") for a in alerts} - {None, ""}
    counts = [(len(views), "feature view"), (len(named) - len(views), "model")]
    words = [f"{n} {word}{'s' * (n != 1)}" for n, word in counts if n]
    return ", ".join(words) or "featmon"


# The facts a message states when all its alerts share them, label -> title.
FACTS = (
    ("feature_view", "Feature view"),
    ("model", "Model"),
    ("owner", "Owner"),
    ("store", "Store"),
)


def _facts(notification: Notification, alerts: list[AlertEvent]) -> list[JSONObject]:
    firing = sum(a.state is AlertState.FIRING for a in alerts)
    pairs = [("Status", f"firing {firing}, resolved {len(alerts) - firing}")]
    pairs.append(("Severity", worst_severity(alerts)))
    for key, title in FACTS:
        values = sorted({a.labels.get(key, "") for a in alerts} - {""})
        if len(values) == 1:
            pairs.append((title, values[0]))
    shown = {key for key, _ in FACTS} | {"severity"}
    pairs += [(k, v) for k, v in sorted(notification.group_labels.items()) if k not in shown]
    if len(pairs) > MAX_FIELDS:
        hidden = len(pairs) - (MAX_FIELDS - 1)
        pairs = [*pairs[: MAX_FIELDS - 1], ("…", f"and {hidden} more")]
    return [_mrkdwn(f"*{escape(k)}*\n{escape(v)}", MAX_FIELD_TEXT) for k, v in pairs]


def _alert_section(alert: AlertEvent) -> JSONObject:
    state = "resolved" if alert.state is AlertState.RESOLVED else "firing"
    lines = [f"{ICONS[state]} *{escape(subject(alert))}* · {escape(alert.severity)}"]
    if given := alert.annotations.get("summary"):
        lines.append(escape(given))
    numbers = []
    if (value := measured(alert)) is not None:
        numbers.append(f"measured *{escape(value)}*")
    if threshold := alert.annotations.get("threshold"):
        numbers.append(f"threshold {escape(threshold)}")
    if sample := alert.annotations.get("sample_size"):
        numbers.append(f"sample {escape(sample)}")
    if numbers:
        lines.append(" · ".join(numbers))
    if alert.state is AlertState.RESOLVED and alert.ends_at is not None:
        lines.append(f"since {format_time(alert.starts_at)}, resolved {format_time(alert.ends_at)}")
    else:
        lines.append(f"since {format_time(alert.starts_at)}")
    return {"type": "section", "text": _mrkdwn("\n".join(lines), MAX_SECTION_TEXT)}


def _line(alert: AlertEvent) -> str:
    value, threshold = measured(alert), alert.annotations.get("threshold")
    numbers = f": {value}" + (f" (threshold {threshold})" if threshold else "") if value else ""
    state = " resolved" if alert.state is AlertState.RESOLVED else ""
    return f"{alert.severity} {subject(alert)}{numbers}{state}"


def escape(text: str) -> str:
    """Slack's three control characters; what a store or check file names is never markup
    (no `<!channel>` pings, no links) in mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _plain(text: str, limit: int) -> JSONObject:
    return {"type": "plain_text", "text": truncate(text, limit), "emoji": True}


def _mrkdwn(text: str, limit: int) -> JSONObject:
    return {"type": "mrkdwn", "text": truncate(text, limit)}
