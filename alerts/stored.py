"""The alert state as a store keeps it, and the outbox's rows: the frozen values that cross the
`AlertStore` protocol (`alerts.abc`). The store owns how they are kept; the pipeline owns what
they mean (`alerts.codec` and `AlertRecord` read and write the documents).

JSON read back from a store is frozen: mappings are read-only and lists are tuples, so a value
can be shared between threads without a copy; `thaw` gives plain JSON again.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from checks.result import JSON, rfc3339

FrozenJSON = str | int | float | bool | None | tuple["FrozenJSON", ...] | Mapping[str, "FrozenJSON"]
GroupId = tuple[str, str]
"""A group of the grouper: (receiver, group key)."""


def freeze(value: JSON) -> FrozenJSON:
    """JSON made immutable: dicts become read-only mappings, lists become tuples."""
    if isinstance(value, dict):
        return MappingProxyType({key: freeze(item) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(freeze(item) for item in value)
    return value


def freeze_object(value: JSON) -> Mapping[str, FrozenJSON]:
    """A JSON object made immutable; anything else is a corrupt row."""
    if not isinstance(value, dict):
        raise TypeError(f"expected a JSON object, found {type(value).__name__}")
    return MappingProxyType({key: freeze(item) for key, item in value.items()})


def thaw(value: FrozenJSON) -> JSON:
    """Plain JSON again: dicts and lists, for `json.dumps`."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [thaw(item) for item in value]
    return value


@dataclass(frozen=True)
class AlertScope:
    """The part of the alert state one step reads, locks and rewrites: the records of the
    feature views `views` (None: every record, and every group), and the groups the step then
    asks for. A run's step is scoped to its views; the grouper's timer to the due groups."""

    views: frozenset[str] | None = None

    @classmethod
    def of(cls, views: Collection[str]) -> AlertScope:
        return cls(frozenset(views))

    @property
    def everything(self) -> bool:
        return self.views is None


@dataclass(frozen=True)
class StoredRecord:
    """One alert record as stored: its JSON document and the feature view it belongs to."""

    document: Mapping[str, JSON]
    feature_view: str


@dataclass(frozen=True)
class StoredGroup:
    """One group of the grouper as stored: its JSON document, and when it next wants to send."""

    document: Mapping[str, JSON]
    flush_at: datetime | None


@dataclass(frozen=True)
class StoredSilence:
    """One silence created through the API: the silence as it was posted (with its id), its
    window, and when it was created and, if it was, expired (ended early)."""

    id: str
    document: Mapping[str, FrozenJSON]
    starts_at: datetime
    ends_at: datetime
    created_at: datetime
    expired_at: datetime | None

    @property
    def ended_at(self) -> datetime:
        """When it stops (or stopped) muting: its end, or its expiry if that came first."""
        if self.expired_at is None:
            return self.ends_at
        return min(self.ends_at, self.expired_at)

    def status(self, now: datetime) -> str:
        """Alertmanager's words: `pending` (not started), `active` or `expired`."""
        if self.ended_at <= now:
            return "expired"
        return "pending" if now < self.starts_at else "active"

    def as_json(self, now: datetime) -> dict[str, JSON]:
        return {
            **{key: thaw(value) for key, value in self.document.items()},
            "id": self.id,
            "status": self.status(now),
            "created_at": rfc3339(self.created_at),
            "expired_at": None if self.expired_at is None else rfc3339(self.expired_at),
        }


@dataclass(frozen=True)
class AlertDocuments:
    """Alert state as a store holds it: records by fingerprint, groups by (receiver, group
    key), and (in an alerting step) the API silences in force at the step's time."""

    records: Mapping[str, StoredRecord]
    groups: Mapping[GroupId, StoredGroup]
    silences: tuple[StoredSilence, ...] = ()

    def merged(self, before: AlertDocuments, after: AlertChange) -> AlertDocuments:
        """This state, with the part `before` read replaced by `after` (what a step left)."""
        records = {fp: r for fp, r in self.records.items() if fp not in before.records}
        groups = {ident: g for ident, g in self.groups.items() if ident not in before.groups}
        return AlertDocuments(records | dict(after.records), groups | dict(after.groups))


@dataclass(frozen=True)
class NewNotification:
    """A notification to put in the outbox. `dedup_key` identifies it: the outbox keeps one row
    per key, so enqueueing the same notification twice keeps the first. `delivered_at`: it was
    sent already, from memory while the state database was down, and is written delivered."""

    receiver: str
    group_key: str
    dedup_key: str
    notification: Mapping[str, JSON]
    created_at: datetime
    delivered_at: datetime | None = None


@dataclass(frozen=True)
class AlertChange:
    """What one alerting step leaves of the part it read: every record and group to keep (the
    others read are deleted) and the notifications to enqueue, written in one transaction."""

    records: Mapping[str, StoredRecord]
    groups: Mapping[GroupId, StoredGroup]
    outbox: tuple[NewNotification, ...] = ()


class OutboxState(enum.Enum):
    PENDING = "pending"  # waiting for its next attempt (or being attempted under a claim)
    DELIVERED = "delivered"
    DEAD = "dead"  # given up: a permanent failure, or retried past the deadline


@dataclass(frozen=True)
class OutboxRow:
    """One notification in the outbox. `attempts` counts the claims so far (this one included
    when the row was just claimed); `claim` is the token of the worker holding it."""

    id: int
    receiver: str
    group_key: str
    dedup_key: str
    notification: Mapping[str, FrozenJSON]
    created_at: datetime
    next_attempt_at: datetime
    attempts: int
    state: OutboxState
    last_error: str | None
    delivered_at: datetime | None
    claim: str | None
