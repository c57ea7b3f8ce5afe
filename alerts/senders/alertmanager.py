"""Prometheus Alertmanager: alerts pushed with `POST /api/v2/alerts` to every peer of the
cluster, as Prometheus does (Alertmanager's peers gossip silences and notification logs, not
alerts: a peer that was not told does not know).

A firing alert is sent with `endsAt` = the push's time + `ends_after` (4x the resend interval
unless set), so that it stays active until the next push and resolves by itself if featmon
stops pushing; a resolved one with `endsAt` = now (the notification's time).
Labels are the alert's identity (Alertmanager de-duplicates on them), with `alertname`.

The notification is delivered when at least one peer accepted it (the others are logged as a
warning with their reason); when none did, the failure is retryable if any peer's was, with the
soonest `Retry-After` among them, and permanent only if every peer refused the alerts.
"""

from __future__ import annotations

import json
import logging

import httpx

from alerts.abc import Sender
from alerts.config import AlertmanagerReceiver
from alerts.errors import DeliveryFailed
from alerts.model import Notification
from alerts.senders.content import deliverable, postable_alert
from alerts.senders.transport import excerpt, failure, post, redacted

log = logging.getLogger(__name__)

PATH = "/api/v2/alerts"


def alerts_url(peer: str) -> str:
    """The alerts endpoint of a peer given by its base URL (which may carry a route prefix)."""
    return peer.rstrip("/") + PATH


class AlertmanagerSender(Sender):
    def __init__(self, name: str, settings: AlertmanagerReceiver, client: httpx.Client) -> None:
        self.name = name
        self._settings = settings
        self._client = client

    def __repr__(self) -> str:
        return f"AlertmanagerSender(name={self.name!r}, peers={len(self._settings.peers)})"

    def send(self, notification: Notification) -> None:
        alerts = deliverable(notification.alerts)
        if not alerts:
            return
        until = notification.created_at + self._settings.ends_after
        body = json.dumps(
            [postable_alert(alert, notification, until) for alert in alerts], ensure_ascii=False
        ).encode()
        failures: list[DeliveryFailed] = []
        for peer in self._settings.peers:
            try:
                self._push(peer.get_secret_value(), body)
            except DeliveryFailed as failed:
                failures.append(failed)
        peers = len(self._settings.peers)
        if len(failures) < peers:
            if failures:
                log.warning(
                    "receiver %r: %d alerts accepted by %d of %d Alertmanagers; not by: %s",
                    self.name,
                    len(alerts),
                    peers - len(failures),
                    peers,
                    "; ".join(f.reason for f in failures),
                )
            return
        raise _none_accepted(self.name, failures) from failures[0]

    def _push(self, peer: str, body: bytes) -> None:
        where = redacted(peer)
        response = post(
            self._client,
            where,
            alerts_url(peer),
            content=body,
            timeout=self._settings.timeout,
            secrets=[peer],
        )
        if 200 <= response.status_code < 300:
            return
        raise failure(where, response, excerpt(response, [peer]))


def _none_accepted(name: str, failures: list[DeliveryFailed]) -> DeliveryFailed:
    reasons = "; ".join(f"{f.receiver} {f.reason}" for f in failures)
    reason = f"no Alertmanager accepted the alerts: {reasons}"
    retryable = [f for f in failures if not f.permanent]
    if not retryable:
        return DeliveryFailed(name, reason, permanent=True)
    hints = [f.retry_after for f in retryable if f.retry_after is not None]
    return DeliveryFailed(name, reason, permanent=False, retry_after=min(hints, default=None))
