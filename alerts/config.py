"""Receiver settings in config.yaml. Secrets are `SecretStr`: they never reach a log, a report,
a metric or an error message. Secret values are not validated here, since a validation error
would echo them; a malformed one is a permanent delivery failure that does not quote it."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from checks.duration import Duration, format_duration


class RetrySettings(BaseModel):
    """How a notification a receiver did not take is tried again: attempt n waits
    `base * 2**(n-1)` (jittered), at most `cap`, and never less than the receiver's
    `Retry-After`; no attempt is made later than `deadline` after it was enqueued."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base: Duration = Field(timedelta(seconds=5), description="Wait before the first retry.")
    cap: Duration = Field(timedelta(minutes=5), description="Longest wait between two attempts.")
    deadline: Duration = Field(
        timedelta(hours=1),
        description="Give up (the notification is dead) this long after it was enqueued.",
    )

    @field_validator("base")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError(f"expected a duration above 0s, found {format_duration(value)}")
        return value

    @field_validator("cap", "deadline")
    @classmethod
    def _not_below_base(cls, value: timedelta, info: ValidationInfo) -> timedelta:
        base = info.data.get("base")
        if isinstance(base, timedelta) and value < base:
            raise ValueError(
                f"expected {info.field_name} to be at least base ({format_duration(base)}), "
                f"found {format_duration(value)}"
            )
        return value


class _Receiver(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    timeout: Duration = Field(
        timedelta(seconds=10),
        description="Longest one request may wait: to connect, to send, and between bytes read.",
    )
    retry: RetrySettings | None = Field(
        None,
        description="Retries of this receiver's notifications, replacing `alerting.retry` "
        "whole (fields not given take their defaults).",
    )


class SlackReceiver(_Receiver):
    type: Literal["slack"]
    webhook_url: SecretStr = Field(description="Incoming-webhook URL; use ${SLACK_WEBHOOK_URL}.")
    send_resolved: bool = True
    max_per_second: float = Field(
        1.0, gt=0, le=100, description="Messages per second to this webhook (Slack allows ~1)."
    )


class PagerDutyReceiver(_Receiver):
    type: Literal["pagerduty"]
    routing_key: SecretStr = Field(description="Events API v2 integration key.")
    url: SecretStr = Field(
        SecretStr("https://events.pagerduty.com/v2/enqueue"),
        description="Events API endpoint (a proxy's URL may carry credentials).",
    )
    source: str | None = Field(
        None, description="payload.source; default: the alert's store and feature view."
    )


class WebhookReceiver(_Receiver):
    type: Literal["webhook"]
    url: SecretStr = Field(description="Where to POST; a token in its path or query is secret.")
    hmac_secret: SecretStr | None = Field(
        None, description="Signs the body: HMAC-SHA256 hex in the signature header."
    )
    signature_header: str = Field("X-Featmon-Signature", pattern=r"^[A-Za-z0-9-]+$")
    send_resolved: bool = True
    max_alerts: int = Field(
        0, ge=0, description="Most alerts in one message (0: all); the rest are counted."
    )


class AlertmanagerReceiver(_Receiver):
    """Pushes alerts to Prometheus Alertmanager (`POST /api/v2/alerts`) on every peer."""

    type: Literal["alertmanager"]
    peers: tuple[SecretStr, ...] = Field(
        min_length=1,
        description="Base URL of every Alertmanager of the cluster (may carry credentials).",
    )
    resend_interval: Duration = Field(
        timedelta(minutes=5),
        description="How often firing alerts are pushed again; at least the longest schedule.",
    )
    firing_ends_after: Duration | None = Field(
        None, description="endsAt of a firing alert after its push; default 4x resend_interval."
    )

    @field_validator("peers")
    @classmethod
    def _http_urls(cls, peers: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        """Messages name the peer by its position, never by its URL (it may hold a password)."""
        for index, peer in enumerate(peers):
            try:
                parts = urlsplit(peer.get_secret_value())
                hostname = parts.hostname
            except ValueError:
                parts, hostname = urlsplit(""), None
            if parts.scheme not in ("http", "https") or not hostname:
                raise ValueError(
                    f"expected an http(s) URL such as http://am:9093, found peer {index + 1} "
                    "not one"
                )
            if parts.query or parts.fragment:
                raise ValueError(
                    f"expected a base URL without ?query or #fragment, found peer {index + 1} "
                    "with one"
                )
        return peers

    @property
    def ends_after(self) -> timedelta:
        """How long after a push a firing alert stays active without another push."""
        return self.firing_ends_after or 4 * self.resend_interval


class FileReceiver(_Receiver):
    type: Literal["file"]
    path: str = Field(description="JSON lines are appended here.")


Receiver = Annotated[
    SlackReceiver | PagerDutyReceiver | WebhookReceiver | AlertmanagerReceiver | FileReceiver,
    Field(discriminator="type"),
]
