"""Receiver settings in config.yaml. Secrets are `SecretStr`: they never reach a log, a report,
a metric or an error message."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from checks.duration import Duration


class _Receiver(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    timeout: Duration = Field(timedelta(seconds=10), description="Longest one delivery may take.")


class SlackReceiver(_Receiver):
    type: Literal["slack"]
    webhook_url: SecretStr = Field(description="Incoming-webhook URL; use ${SLACK_WEBHOOK_URL}.")
    send_resolved: bool = True


class PagerDutyReceiver(_Receiver):
    type: Literal["pagerduty"]
    routing_key: SecretStr = Field(description="Events API v2 integration key.")
    url: str = "https://events.pagerduty.com/v2/enqueue"


class WebhookReceiver(_Receiver):
    type: Literal["webhook"]
    url: SecretStr
    hmac_secret: SecretStr | None = None


class FileReceiver(_Receiver):
    type: Literal["file"]
    path: str = Field(description="JSON lines are appended here.")


Receiver = Annotated[
    SlackReceiver | PagerDutyReceiver | WebhookReceiver | FileReceiver,
    Field(discriminator="type"),
]
