"""What the daemon tells the outside about its work, as it happens: the Prometheus metrics
(monitor.metrics) implement this; tests may record it. Implementations must be thread-safe and
must not raise. A run's `feature_view` is its subject: a view's name, or a model's key
`model:<name>` (`CheckResult.subject`; a view's name holds no colon)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from checks.result import RunResult


class RunObserver(Protocol):
    def probe_finished(self, feature_view: str, store: str, seconds: float, failed: bool) -> None:
        """One probe (one store read or query for one view) ended after `seconds`; `failed`
        when it could not measure (its checks are `error`)."""

    def run_finished(self, feature_view: str, run: RunResult) -> None:
        """A scheduled run of `feature_view` ended (recorded, alerts evaluated)."""

    def run_skipped(self, feature_view: str, scheduled_at: datetime) -> None:
        """A run was due while the previous run of the same view was still going."""

    def run_claimed_elsewhere(self, feature_view: str, scheduled_at: datetime) -> None:
        """Another daemon replica claimed (and runs, or ran) this scheduled run."""

    def run_lost(self, feature_view: str, scheduled_at: datetime) -> None:
        """A scheduled run was never run: its claim could not be written, or its holder died
        and no replica took it over within the misfire grace."""

    def run_unrecorded(self, feature_view: str, scheduled_at: datetime) -> None:
        """A run was probed and alerted on, but never recorded: the state database could not
        take it and the buffer waiting for it was full."""

    def config_reloaded(self, ok: bool, error: str | None) -> None:
        """A reload was attempted; on failure the last good configuration keeps running."""

    def notification_outcome(self, receiver: str, outcome: str) -> None:
        """One delivery attempt of a notification ended: `delivered`, `retried` or `dead`."""


class NoObserver:
    """Observes nothing (the CLI's one-shot `check`)."""

    def probe_finished(self, feature_view: str, store: str, seconds: float, failed: bool) -> None:
        pass

    def run_finished(self, feature_view: str, run: RunResult) -> None:
        pass

    def run_skipped(self, feature_view: str, scheduled_at: datetime) -> None:
        pass

    def run_claimed_elsewhere(self, feature_view: str, scheduled_at: datetime) -> None:
        pass

    def run_lost(self, feature_view: str, scheduled_at: datetime) -> None:
        pass

    def run_unrecorded(self, feature_view: str, scheduled_at: datetime) -> None:
        pass

    def config_reloaded(self, ok: bool, error: str | None) -> None:
        pass

    def notification_outcome(self, receiver: str, outcome: str) -> None:
        pass
