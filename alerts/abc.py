"""The interfaces of the alerts package.

A `Sender` delivers one `Notification` to one receiver. It is built from its receiver settings by
`alerts.senders.build_sender`, with an injected `httpx.Client` that it uses but never closes (the
code that created the client closes it). `send` either returns (the receiver accepted) or raises
`DeliveryFailed`; it never retries: the delivery worker does, honouring `retry_after`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from alerts.model import Notification


class Sender(ABC):
    """Delivers notifications to one receiver."""

    name: str  # the receiver's name in config.yaml

    @abstractmethod
    def send(self, notification: Notification) -> None:
        """Deliver `notification`: its firing and resolved alerts (pending ones are never
        delivered). Raises `DeliveryFailed`, permanent or retryable, and nothing else."""
