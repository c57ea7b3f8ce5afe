"""The senders: one module per receiver type, each the only one to speak its protocol.

    build_sender(name, settings, client) -> Sender

picks the sender by the type of the settings model (never by a class name read from config).
Every HTTP sender uses the injected `httpx.Client` and never closes it; `new_client()` makes one
for `build_app`, which closes it on shutdown.
"""

from __future__ import annotations

from typing import assert_never

import httpx

from alerts.abc import Sender
from alerts.config import (
    AlertmanagerReceiver,
    FileReceiver,
    PagerDutyReceiver,
    Receiver,
    SlackReceiver,
    WebhookReceiver,
)
from alerts.senders.alertmanager import AlertmanagerSender
from alerts.senders.file import FileSender
from alerts.senders.pagerduty import PagerDutySender
from alerts.senders.slack import SlackSender
from alerts.senders.transport import new_client, redact_request_logs
from alerts.senders.webhook import WebhookSender

__all__ = ["build_sender", "new_client"]


def build_sender(name: str, settings: Receiver, client: httpx.Client) -> Sender:
    """The sender for receiver `name` (the file receiver needs no client, and ignores it)."""
    redact_request_logs()
    match settings:
        case SlackReceiver():
            return SlackSender(name, settings, client)
        case PagerDutyReceiver():
            return PagerDutySender(name, settings, client)
        case WebhookReceiver():
            return WebhookSender(name, settings, client)
        case AlertmanagerReceiver():
            return AlertmanagerSender(name, settings, client)
        case FileReceiver():
            return FileSender(name, settings)
        case _:
            assert_never(settings)
