"""The alert state in memory: what the pipeline knows of the store's, served as the same
`AlertTransaction` while the store is down.

Every step that the store took is remembered here (the part it read replaced by what it left),
so that a step the store fails is taken from the state as the last steps left it. The first
step over a store reads all of it (`Remembered.complete` is False until then), so memory holds
the whole state from then on.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

from alerts.abc import AlertTransaction
from alerts.stored import (
    AlertChange,
    AlertDocuments,
    AlertScope,
    GroupId,
    StoredGroup,
    StoredRecord,
    StoredSilence,
)


class Remembered:
    """The alert state as the steps left it. Not thread-safe: the pipeline's lock guards it."""

    def __init__(self) -> None:
        self.state = AlertDocuments({}, {})
        self.complete = False  # True once a step read the whole store

    def take(self, step: Recording) -> None:
        """After a step the store committed: its part as the step left it."""
        if step.change is None:
            return
        read = AlertDocuments(step.records, step.read_groups)
        merged = self.state.merged(read, step.change)
        self.state = AlertDocuments(merged.records, merged.groups, step.silences)
        self.complete = self.complete or step.scope.everything

    def transaction(self, scope: AlertScope) -> Recording:
        """A step over memory; `take` it afterwards to keep what it wrote."""
        return Recording(_MemoryPart(self.state, scope), scope)

    def next_flush(self) -> datetime | None:
        flushes = (g.flush_at for g in self.state.groups.values() if g.flush_at is not None)
        return min(flushes, default=None)


class Recording:
    """An `AlertTransaction` that keeps what its step read and wrote (to remember it)."""

    def __init__(self, inner: AlertTransaction, scope: AlertScope) -> None:
        self._inner = inner
        self.scope = scope
        self.read_groups: Mapping[GroupId, StoredGroup] = {}
        self.change: AlertChange | None = None

    @property
    def records(self) -> Mapping[str, StoredRecord]:
        return self._inner.records

    @property
    def silences(self) -> tuple[StoredSilence, ...]:
        return self._inner.silences

    def groups(self, idents: Collection[GroupId]) -> Mapping[GroupId, StoredGroup]:
        self.read_groups = self._inner.groups(idents)
        return self.read_groups

    def due_groups(self, now: datetime) -> Mapping[GroupId, StoredGroup]:
        self.read_groups = self._inner.due_groups(now)
        return self.read_groups

    def others(self, fingerprints: Collection[str]) -> Mapping[str, StoredRecord]:
        return self._inner.others(fingerprints)

    def write(self, change: AlertChange) -> None:
        self._inner.write(change)
        self.change = change


class _MemoryPart:
    """The part of `state` that `scope` names, as a transaction (writing is remembering)."""

    def __init__(self, state: AlertDocuments, scope: AlertScope) -> None:
        self._state = state
        self._all = scope.views is None
        views = scope.views or frozenset()
        self._records = {
            fp: r for fp, r in state.records.items() if self._all or r.feature_view in views
        }

    @property
    def records(self) -> Mapping[str, StoredRecord]:
        return self._records

    @property
    def silences(self) -> tuple[StoredSilence, ...]:
        return self._state.silences

    def groups(self, idents: Collection[GroupId]) -> Mapping[GroupId, StoredGroup]:
        if self._all:
            return dict(self._state.groups)
        return {i: self._state.groups[i] for i in idents if i in self._state.groups}

    def due_groups(self, now: datetime) -> Mapping[GroupId, StoredGroup]:
        groups = self._state.groups.items()
        return {i: g for i, g in groups if self._all or (g.flush_at and g.flush_at <= now)}

    def others(self, fingerprints: Collection[str]) -> Mapping[str, StoredRecord]:
        return {fp: self._state.records[fp] for fp in fingerprints if fp in self._state.records}

    def write(self, change: AlertChange) -> None:
        """Nothing to write: the caller remembers the change."""
