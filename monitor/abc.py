"""The interfaces of the monitor package: every store implements one of these.

A store is built from its config model by `monitor.app.build_app`, owns its client (engine,
connection pool) and closes it in `close()`. Every method raises only `StoreError` subclasses;
the probe turns those into `error` results.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from checks.model import FeatureView
from checks.observation import (
    EntityValue,
    ModelObservation,
    OfflineMetric,
    OfflineObservation,
    OfflineRow,
    OnlineObservation,
    ReferenceSample,
)
from checks.served import ServedModel, ServingLog

if TYPE_CHECKING:
    from checks.result import Status
    from monitor.state.values import Baseline, HistoryPoint, StoredResult

EntityKey = tuple[EntityValue, ...]  # one value per join key, in the order of view.join_keys


class OnlineStore(ABC):
    """Where features are served from: read sampled entities, bounded by the sample size."""

    name: str

    @abstractmethod
    def read(
        self,
        view: FeatureView,
        keys: Sequence[EntityKey],
        population: str,
        *,
        undeclared: bool = True,
    ) -> OnlineObservation:
        """Read the declared features of `view` for exactly these entities (one reading each,
        in order; an entity the store lacks is a reading with `present=False`). `undeclared`:
        also find the stored features nothing declares (online schema drift needs them); when
        False a store may read the declared fields alone, and reports none."""

    @abstractmethod
    def sample_keys(self, view: FeatureView, size: int) -> list[EntityKey]:
        """Up to `size` random entity keys that the store holds for `view`, at a cost bounded
        by `size`, never by the size of the store."""

    @abstractmethod
    def close(self) -> None:
        """Release the client this store created."""


class OfflineStore(ABC):
    """Where features are born: aggregate metrics pushed down to the engine."""

    name: str

    @abstractmethod
    def measure(
        self, view: FeatureView, metrics: frozenset[OfflineMetric], scheduled_at: datetime
    ) -> OfflineObservation:
        """Measure all `metrics` of the view's table in one aggregate query, plus one catalog
        lookup for its columns. A metric whose column is missing is reported in
        `unavailable`, and the others are still measured."""

    @abstractmethod
    def sample_entities(
        self, view: FeatureView, size: int, since: datetime, until: datetime
    ) -> list[EntityKey]:
        """Up to `size` distinct entity keys, chosen at random among those with an event time
        in [since, until] (the coverage population)."""

    @abstractmethod
    def query_entities(self, join_keys: Sequence[str], query: str, size: int) -> list[EntityKey]:
        """Up to `size` rows (recent requests: an entity requested often may be drawn often),
        chosen at random by the engine among the rows of the user's `query` (one column per
        join key, named as the join keys), each as its values in the order of `join_keys`."""

    @abstractmethod
    def latest_rows(
        self, view: FeatureView, bounds: Mapping[EntityKey, datetime], features: Sequence[str]
    ) -> dict[EntityKey, OfflineRow]:
        """For each entity of `bounds`, its latest row with an event time at or before its
        bound, with the values of `features` (entities without one are left out): skew's
        input, in queries of a bounded batch of entities each."""

    @abstractmethod
    def sample_rows(
        self,
        view: FeatureView,
        features: Sequence[str],
        since: datetime,
        until: datetime,
        size: int,
    ) -> ReferenceSample:
        """Up to `size` rows with an event time in [since, until), drawn at random by the
        engine, with the values of `features`: distribution drift's reference."""

    @abstractmethod
    def measure_serving_log(
        self, served: ServedModel, log: ServingLog, since: datetime, until: datetime
    ) -> ModelObservation:
        """Judge every request of the model logged in [since, until) (by `log.log_timestamp`)
        in one aggregate query run by the engine: coverage with its reasons per view and
        feature, nearest-rank quantiles of value ages, and the count of values whose Feast
        status disagrees (when `log.statuses`). Raises `SourceNotFound` when the log or a
        column it needs is missing, naming it."""

    @abstractmethod
    def close(self) -> None:
        """Release the client this store created."""


class StateReader(Protocol):
    """What a probe reads from (and, for a first schema baseline, writes to) the state
    database: `monitor.state.StateStore` is one. Every method raises `StateError` on failure."""

    def history(
        self, check: str, limit: int = 50, until: datetime | None = None
    ) -> list[HistoryPoint]: ...

    def history_near(
        self, check: str, times: Sequence[datetime], tolerance: timedelta
    ) -> list[HistoryPoint]: ...

    def results(
        self,
        view: str | None = None,
        check: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        status: Status | None = None,
        limit: int = 100,
    ) -> list[StoredResult]: ...

    def baseline(self, view: str, store: str) -> Baseline | None: ...

    def save_baseline(self, baseline: Baseline) -> None: ...
