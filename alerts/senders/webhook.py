"""Generic webhooks: Alertmanager's webhook payload version 4, so that a receiver written for
Alertmanager (`version`, `groupKey`, `truncatedAlerts`, `status`, `receiver`, `groupLabels`,
`commonLabels`, `commonAnnotations`, `externalURL`, `alerts[]`) takes featmon's notifications
unchanged.

With `hmac_secret`, the body is signed: `X-Featmon-Signature: sha256=<hex>` is the HMAC-SHA256
of the exact bytes sent, so the receiver verifies it over the raw body before parsing it.

2xx is success; 4xx is permanent except 408 and 429; 5xx is retryable.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

import httpx

from alerts.abc import Sender
from alerts.config import WebhookReceiver
from alerts.model import Notification
from alerts.senders.content import deliverable, webhook_message
from alerts.senders.transport import excerpt, failure, post

log = logging.getLogger(__name__)


def signature(secret: str, body: bytes) -> str:
    """`sha256=<hex>`: the HMAC-SHA256 of `body` under `secret`."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookSender(Sender):
    def __init__(self, name: str, settings: WebhookReceiver, client: httpx.Client) -> None:
        self.name = name
        self._settings = settings
        self._client = client

    def __repr__(self) -> str:
        return f"WebhookSender(name={self.name!r})"

    def send(self, notification: Notification) -> None:
        settings = self._settings
        alerts = deliverable(notification.alerts, settings.send_resolved)
        if not alerts:
            log.info("receiver %r: nothing to send (resolved only, send_resolved off)", self.name)
            return
        message = webhook_message(notification, alerts, settings.max_alerts)
        body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()
        url = settings.url.get_secret_value()
        secrets = [url]
        headers = {}
        if settings.hmac_secret is not None:
            key = settings.hmac_secret.get_secret_value()
            secrets.append(key)
            headers[settings.signature_header] = signature(key, body)
        response = post(
            self._client,
            self.name,
            url,
            content=body,
            timeout=settings.timeout,
            headers=headers,
            secrets=secrets,
        )
        if 200 <= response.status_code < 300:
            return
        raise failure(self.name, response, excerpt(response, secrets))
