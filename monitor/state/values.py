"""The values that cross the state database's API: frozen, and JSON-ready through `as_json()`.

The content of the JSON columns (a result's threshold, details and labels) is kept as frozen
JSON: mappings are read-only and lists are tuples, so a value can be shared between threads
(the HTTP API, the Prometheus collector) without a copy; `as_json()` thaws it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from checks.observation import Column
from checks.result import JSON, Status, rfc3339

FrozenJSON = str | int | float | bool | None | tuple["FrozenJSON", ...] | Mapping[str, "FrozenJSON"]


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
class RunCounts:
    """How many results of a run ended in each status."""

    passed: int
    warned: int
    failed: int
    errors: int

    @property
    def total(self) -> int:
        return self.passed + self.warned + self.failed + self.errors

    def as_json(self) -> dict[str, JSON]:
        """The shape of `RunResult.counts()`."""
        return {"pass": self.passed, "warn": self.warned, "fail": self.failed, "error": self.errors}


@dataclass(frozen=True)
class StoredRun:
    """One recorded run. `feature_view` is the view every result belongs to, or None when the
    run covered several views (or none); per-view questions go to the results."""

    run_id: str
    feature_view: str | None
    scheduled_at: datetime
    started_at: datetime
    finished_at: datetime
    duration_seconds: float
    status: Status
    counts: RunCounts

    def as_json(self) -> dict[str, JSON]:
        return {
            "run_id": self.run_id,
            "feature_view": self.feature_view,
            "scheduled_at": rfc3339(self.scheduled_at),
            "started_at": rfc3339(self.started_at),
            "finished_at": rfc3339(self.finished_at),
            "duration_seconds": self.duration_seconds,
            "status": self.status.value,
            "counts": self.counts.as_json(),
        }


@dataclass(frozen=True)
class StoredResult:
    """One check's recorded outcome in one run. `threshold`, `details` and `labels` hold what
    `CheckResult.as_json()` gave for them; `as_json()` is that shape plus the run id and time."""

    run_id: str
    scheduled_at: datetime
    check: str
    kind: str
    feature_view: str
    feature: str | None
    store: str
    target: str
    status: Status
    severity: str
    value: float | None
    threshold: Mapping[str, FrozenJSON]
    sample_size: int | None
    details: Mapping[str, FrozenJSON]
    labels: Mapping[str, str]

    def as_json(self) -> dict[str, JSON]:
        return {
            "run_id": self.run_id,
            "scheduled_at": rfc3339(self.scheduled_at),
            "check": self.check,
            "kind": self.kind,
            "feature_view": self.feature_view,
            "feature": self.feature,
            "store": self.store,
            "target": self.target,
            "status": self.status.value,
            "severity": self.severity,
            "value": self.value,
            "threshold": thaw(self.threshold),
            "sample_size": self.sample_size,
            "details": thaw(self.details),
            "labels": dict(self.labels),
        }


@dataclass(frozen=True)
class HistoryPoint:
    """One past value of a check, for anomaly detection and sparklines."""

    run_id: str
    scheduled_at: datetime
    value: float | None
    status: Status

    def as_json(self) -> dict[str, JSON]:
        return {
            "run_id": self.run_id,
            "scheduled_at": rfc3339(self.scheduled_at),
            "value": self.value,
            "status": self.status.value,
        }


@dataclass(frozen=True)
class Baseline:
    """The accepted schema of one feature view's offline source on one store, the expected
    columns of its `schema_drift` check when the check file declares none."""

    feature_view: str
    store: str
    source: str  # the table or Parquet path the columns were read from
    columns: tuple[Column, ...]
    captured_at: datetime
    accepted_by: str | None = None
    comment: str | None = None

    def as_json(self) -> dict[str, JSON]:
        return {
            "feature_view": self.feature_view,
            "store": self.store,
            "source": self.source,
            "columns": [
                {"name": c.name, "family": c.family, "native_type": c.native_type}
                for c in self.columns
            ],
            "captured_at": rfc3339(self.captured_at),
            "accepted_by": self.accepted_by,
            "comment": self.comment,
        }


# -- alert state and the outbox (version 2) ----------------------------------------------------


@dataclass(frozen=True)
class StoredGroup:
    """One group of the grouper as stored: its JSON document, and when it next wants to send."""

    document: Mapping[str, JSON]
    flush_at: datetime | None


@dataclass(frozen=True)
class StoredSilence:
    """One silence created through the API (version 4): the silence as it was posted (with its
    id), its window, and when it was created and, if it was, expired (ended early)."""

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
    """The alert state as the database holds it: each alert record's JSON document by
    fingerprint, each group by (receiver, group key), and (in an alerting step) the API
    silences in force at the step's time, read in the same transaction."""

    records: Mapping[str, Mapping[str, JSON]]
    groups: Mapping[tuple[str, str], StoredGroup]
    silences: tuple[StoredSilence, ...] = ()


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
    """What one alerting step leaves behind: every record and group to keep (the others are
    deleted) and the notifications to enqueue, all written in one transaction."""

    records: Mapping[str, Mapping[str, JSON]]
    groups: Mapping[tuple[str, str], StoredGroup]
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


class ClaimOutcome(enum.Enum):
    """What `StateStore.claim_run` answered: this holder runs the scheduled run (`WON`: first
    claim; `TAKEN_OVER`: its earlier holder let the lease end unfinished), or it does not
    (`ELSEWHERE`: held or finished by another holder)."""

    WON = "won"
    TAKEN_OVER = "taken over"
    ELSEWHERE = "elsewhere"


class ClaimEnd(enum.Enum):
    """How a claimed run ended: run by its holder, or lost (its holder stopped renewing the
    lease and nobody took it over within the misfire grace)."""

    DONE = "done"
    LOST = "lost"


@dataclass(frozen=True)
class RunClaim:
    """One scheduled run of one feature view, claimed by one daemon replica. `attempt` is 1 for
    the first holder and counts each takeover."""

    feature_view: str
    scheduled_at: datetime
    holder: str
    claimed_at: datetime
    expires_at: datetime
    attempt: int
    finished_at: datetime | None
    end: ClaimEnd | None
