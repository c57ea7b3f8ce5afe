"""PagerDuty Events API v2 (`POST /v2/enqueue`): one event per alert, `trigger` while it fires
and `resolve` once it is resolved.

The `dedup_key` is the alert's fingerprint (a hash of its labels), so a retry, a restart or a
second replica sending the same alert adds to the open PagerDuty alert instead of opening a
second incident, and the resolve closes exactly that one. A trigger carries the PD-CEF payload:
`summary` (at most 1024 characters), `source`, `severity` (P1 critical, P2 error, P3 warning,
P4 info), `timestamp`, `component` (the feature view, or `model:<name>` for a model's alert),
`group` (store: for a model, the store its requests were read from), `class` (check kind) and
`custom_details` (value and threshold as people read them, `value_raw` and `threshold_raw` as
numbers, sample size, labels with a model's `owner`), with a link to the report.

PagerDuty answers 202; 400 (an invalid event) is permanent; 429 and 5xx are retryable: 429
with `Retry-After` when given, else the 30 s PagerDuty's rate-limit page suggests between tries.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

import httpx

from alerts.abc import Sender
from alerts.config import PagerDutyReceiver
from alerts.errors import DeliveryFailed
from alerts.format import format_time
from alerts.model import AlertEvent, AlertState, Notification
from alerts.senders.content import (
    JSONObject,
    deliverable,
    measured,
    raw_threshold,
    raw_value,
    report_url,
    summary,
    truncate,
)
from alerts.senders.transport import excerpt, failure, one_line, post
from checks.result import subject_key

log = logging.getLogger(__name__)

MAX_SUMMARY = 1024
MAX_DEDUP_KEY = 255
RATE_LIMIT_RETRY = 30.0  # "retrying 3 times with each request being 30 seconds apart"
SEVERITIES = {"P1": "critical", "P2": "error", "P3": "warning", "P4": "info"}
CLIENT = "featmon"


def dedup_key(alert: AlertEvent) -> str:
    """One key per alert identity, stable across retries, restarts and replicas."""
    return truncate(f"featmon-{alert.fingerprint}", MAX_DEDUP_KEY, marker="")


def severity(alert: AlertEvent) -> str:
    """P1 critical, P2 error, P3 warning, P4 info; an unknown level pages as an error."""
    return SEVERITIES.get(alert.severity, "error")


class PagerDutySender(Sender):
    def __init__(self, name: str, settings: PagerDutyReceiver, client: httpx.Client) -> None:
        self.name = name
        self._settings = settings
        self._client = client

    def __repr__(self) -> str:
        return f"PagerDutySender(name={self.name!r})"

    def send(self, notification: Notification) -> None:
        """One event per firing or resolved alert. A retryable failure stops at once (the
        rest are retried with it, and PagerDuty de-duplicates what already arrived); an event
        PagerDuty rejects does not stop the others, and the failure says how many it rejected."""
        alerts = deliverable(notification.alerts)
        rejected: list[DeliveryFailed] = []
        for alert in alerts:
            try:
                self._enqueue(event(alert, notification, self._settings))
            except DeliveryFailed as failed:
                if not failed.permanent:
                    raise
                rejected.append(failed)
        if rejected:
            reason = (
                f"{len(rejected)} of {len(alerts)} events rejected; first: {rejected[0].reason}"
            )
            raise DeliveryFailed(self.name, reason, permanent=True) from rejected[0]

    def _enqueue(self, body: JSONObject) -> None:
        key = self._settings.routing_key.get_secret_value()
        url = self._settings.url.get_secret_value()
        body = {"routing_key": key, **body}
        response = post(
            self._client,
            self.name,
            url,
            content=json.dumps(body, ensure_ascii=False).encode(),
            timeout=self._settings.timeout,
            secrets=[key, url],
        )
        if 200 <= response.status_code < 300:
            return
        raise failure(
            self.name,
            response,
            _said(response, [key, url]),
            default_retry_after=RATE_LIMIT_RETRY,
        )


def event(alert: AlertEvent, notification: Notification, settings: PagerDutyReceiver) -> JSONObject:
    """The event for one alert, without the routing key (the sender adds it)."""
    if alert.state is AlertState.RESOLVED:
        return {"event_action": "resolve", "dedup_key": dedup_key(alert)}
    labels = alert.labels
    payload: JSONObject = {
        "summary": truncate(summary(alert), MAX_SUMMARY),
        "source": settings.source or _source(alert),
        "severity": severity(alert),
        "timestamp": format_time(alert.starts_at),
        "custom_details": _details(alert),
    }
    for key, value in (
        ("component", component(labels)),
        ("group", labels.get("store")),
        ("class", alert.annotations.get("kind") or labels.get("check")),
    ):
        if value:
            payload[key] = value
    out: JSONObject = {
        "event_action": "trigger",
        "dedup_key": dedup_key(alert),
        "payload": payload,
        "client": CLIENT,
    }
    if notification.external_url:
        out["client_url"] = notification.external_url
    if link := report_url(alert, notification):
        out["links"] = [{"href": link, "text": "featmon report"}]
    return out


def component(labels: Mapping[str, str]) -> str | None:
    """What the alert is about: its feature view, or `model:<name>` for a model's alert (as
    featmon keys a model's runs; a view's name holds no colon, so neither passes for the
    other)."""
    if view := labels.get("feature_view"):
        return view
    model = labels.get("model")
    return subject_key(None, model) if model else None


def _source(alert: AlertEvent) -> str:
    parts = [alert.labels.get("store", ""), component(alert.labels) or ""]
    return "/".join(p for p in parts if p) or CLIENT


def _details(alert: AlertEvent) -> JSONObject:
    details: JSONObject = {"labels": dict(alert.labels)}
    annotations = alert.annotations
    if (value := measured(alert)) is not None:
        details["value"] = value
        details["value_raw"] = raw_value(alert)
    for key in ("unit", "threshold", "sample_size", "description"):
        if key in annotations:
            details[key] = annotations[key]
    if (threshold := raw_threshold(alert)) is not None:
        details["threshold_raw"] = threshold
    details["fingerprint"] = alert.fingerprint
    return details


def _said(response: httpx.Response, secrets: list[str]) -> str:
    """PagerDuty's `message` and `errors` when it answered JSON, else the body's first words."""
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        return excerpt(response, secrets)
    errors = answer.get("errors")
    words = [
        str(answer.get("message") or ""),
        *(map(str, errors) if isinstance(errors, list) else ()),
    ]
    text = "; ".join(w for w in words if w)
    return one_line(text, secrets) if text else excerpt(response, secrets)
