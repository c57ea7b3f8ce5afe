"""The interfaces of the alerts package.

A `Sender` delivers one `Notification` to one receiver. It is built from its receiver settings by
`alerts.senders.build_sender`, with an injected `httpx.Client` that it uses but never closes (the
code that created the client closes it). `send` either returns (the receiver accepted) or raises
`DeliveryFailed`; it never retries: the delivery worker does, honouring `retry_after`.

An `AlertStore` keeps the alert state and the outbox (the state database implements it). The
pipeline never hands it a function: a step opens `alert_transaction(scope, now, run_id)`, reads
the part of the state its scope names (and the groups it asks for), and hands back what it
leaves with `write`; the store commits when the block ends, and rolls back when it raises.
The same `AlertTransaction` is served from memory while the store is down (`alerts.memory`).
Every method raises `AlertStoreError` when the store fails.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Protocol

from alerts.model import Notification
from alerts.stored import (
    AlertChange,
    AlertScope,
    GroupId,
    OutboxRow,
    StoredGroup,
    StoredRecord,
    StoredSilence,
)


class Sender(ABC):
    """Delivers notifications to one receiver."""

    name: str  # the receiver's name in config.yaml

    @abstractmethod
    def send(self, notification: Notification) -> None:
        """Deliver `notification`: its firing and resolved alerts (pending ones are never
        delivered). Raises `DeliveryFailed`, permanent or retryable, and nothing else."""


class AlertTransaction(Protocol):
    """One alerting step's part of the alert state, read (and locked, against other replicas'
    steps on the same part) in one transaction."""

    @property
    def records(self) -> Mapping[str, StoredRecord]:
        """The records of the scope's feature views (every record for an unscoped step)."""

    @property
    def silences(self) -> tuple[StoredSilence, ...]:
        """The API silences in force at the step's time."""

    def groups(self, idents: Collection[GroupId]) -> Mapping[GroupId, StoredGroup]:
        """Read and lock these groups (those that exist); once per step (every group for an
        unscoped step, whatever `idents` says)."""

    def due_groups(self, now: datetime) -> Mapping[GroupId, StoredGroup]:
        """Read and lock the groups due to send at `now`; once per step, instead of `groups`."""

    def others(self, fingerprints: Collection[str]) -> Mapping[str, StoredRecord]:
        """Records outside the scope, read but not locked (a resend quotes them)."""

    def write(self, change: AlertChange) -> None:
        """What the step leaves of the part it read (records and groups read and absent from
        `change` are deleted), with the notifications to enqueue. Once per step."""


class AlertStore(Protocol):
    """What the alert pipeline and the delivery worker need of the state database."""

    def alert_transaction(
        self, scope: AlertScope, now: datetime, run_id: str | None = None
    ) -> AbstractContextManager[AlertTransaction | None]:
        """One step's transaction; None (nothing to do) when run `run_id` was alerted already.
        The run is marked alerted when the block ends without an exception."""

    def next_group_flush(self) -> datetime | None:
        """When the grouper next has something to send, if anything waits."""

    def claim_outbox(
        self, now: datetime, lease: timedelta, token: str, limit: int = 10
    ) -> list[OutboxRow]:
        """Claim up to `limit` rows due at `now` for `lease` under `token`."""

    def outbox_delivered(self, row_id: int, token: str, now: datetime) -> bool:
        """Mark a claimed row delivered; False when the claim was lost."""

    def outbox_retry(self, row_id: int, token: str, at: datetime, error: str) -> bool:
        """Leave a claimed row pending until `at`, with the reason of the failed attempt."""

    def outbox_release(self, row_id: int, token: str, at: datetime) -> bool:
        """Hand back a claimed row that was not attempted."""

    def outbox_dead(self, row_id: int, token: str, error: str) -> bool:
        """Give up on a claimed row, keeping the reason."""
