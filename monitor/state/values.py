"""The values that cross the state database's API: frozen, and JSON-ready through `as_json()`.
Those of alert state and the outbox are the alerts package's (`alerts.stored`), re-exported.

The content of the JSON columns (a result's threshold, details and labels) is kept as frozen
JSON: mappings are read-only and lists are tuples, so a value can be shared between threads
(the HTTP API, the Prometheus collector) without a copy; `as_json()` thaws it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from alerts.stored import (
    AlertChange,
    AlertDocuments,
    FrozenJSON,
    NewNotification,
    OutboxRow,
    OutboxState,
    StoredGroup,
    StoredRecord,
    StoredSilence,
    freeze,
    freeze_object,
    thaw,
)
from checks.observation import Column
from checks.result import JSON, Status, rfc3339, subject_key


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
    """One recorded run. `feature_view` is the view every result belongs to, or `model` the
    model they all belong to; both None when the run covered several subjects (or none):
    per-subject questions go to the results."""

    run_id: str
    feature_view: str | None
    scheduled_at: datetime
    started_at: datetime
    finished_at: datetime
    duration_seconds: float
    status: Status
    counts: RunCounts
    model: str | None = None

    @property
    def subject(self) -> str | None:
        """The view's name or `model:<name>` of a run of one subject (`CheckResult.subject`)."""
        if self.feature_view is None and self.model is None:
            return None
        return subject_key(self.feature_view, self.model)

    def as_json(self) -> dict[str, JSON]:
        """`model` only for a model's run, as a `CheckResult` writes it."""
        model: dict[str, JSON] = {} if self.model is None else {"model": self.model}
        return {
            "run_id": self.run_id,
            "feature_view": self.feature_view,
            **model,
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
    `CheckResult.as_json()` gave for them; `as_json()` is that shape plus the run id and time.
    A model's result has `model` set and `feature_view` None, as its `CheckResult` has."""

    run_id: str
    scheduled_at: datetime
    check: str
    kind: str
    feature_view: str | None
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
    model: str | None = None

    @property
    def subject(self) -> str:
        """Its view's name, or `model:<name>` (`CheckResult.subject`)."""
        return subject_key(self.feature_view, self.model)

    def as_json(self) -> dict[str, JSON]:
        model: dict[str, JSON] = {} if self.model is None else {"model": self.model}
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
            **model,
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
    """One scheduled run of one feature view or model, claimed by one daemon replica.
    `feature_view` is the run's subject (a view's name, or `model:<name>`); `attempt` is 1 for
    the first holder and counts each takeover."""

    feature_view: str
    scheduled_at: datetime
    holder: str
    claimed_at: datetime
    expires_at: datetime
    attempt: int
    finished_at: datetime | None
    end: ClaimEnd | None


__all__ = [
    "AlertChange",
    "AlertDocuments",
    "Baseline",
    "ClaimEnd",
    "ClaimOutcome",
    "FrozenJSON",
    "HistoryPoint",
    "NewNotification",
    "OutboxRow",
    "OutboxState",
    "RunClaim",
    "RunCounts",
    "StoredGroup",
    "StoredRecord",
    "StoredResult",
    "StoredRun",
    "StoredSilence",
    "freeze",
    "freeze_object",
    "thaw",
]
