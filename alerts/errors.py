"""The exceptions of the alerts package. Third-party errors (httpx, the file system) are
translated into these at the sender that meets them, and raised `from` the original.

    AlertsError
     ├── AlertStoreError  the store of alert state and the outbox failed (`alerts.abc.AlertStore`;
     │                    the state database raises its own `StateError`, one of these)
     └── DeliveryFailed   a receiver did not take a notification: permanent, or retryable
                          (with the receiver's `Retry-After` hint when it gave one)

A message is built from the fields the exception keeps and never holds a secret (webhook URLs,
routing keys, HMAC secrets): senders scrub what a receiver echoes before it becomes a reason.
"""

from __future__ import annotations


class AlertsError(Exception):
    """Base of every error raised by the alerts package."""


class AlertStoreError(AlertsError):
    """The alert store failed or refused an operation: nothing of it was written."""


class DeliveryFailed(AlertsError):
    """A receiver did not accept a notification.

    `permanent`: sending the same notification again cannot succeed (rejected payload, unknown
    channel, revoked key); the delivery worker drops it and reports it. Otherwise it is
    retryable, and `retry_after` is the receiver's hint in seconds (from `Retry-After`), or
    None when the worker's own backoff decides.
    """

    def __init__(
        self, receiver: str, reason: str, permanent: bool, retry_after: float | None = None
    ) -> None:
        if permanent and retry_after is not None:
            raise ValueError("a permanent failure has no retry_after")
        self.receiver = receiver
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after
        if permanent:
            kind = "permanent"
        elif retry_after is None:
            kind = "retryable"
        else:
            kind = f"retryable after {retry_after:g}s"
        super().__init__(f"receiver {receiver!r}: {reason} ({kind})")
