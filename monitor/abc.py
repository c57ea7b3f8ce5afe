"""The interfaces of the monitor package: every store implements one of these.

A store is built from its config model by `monitor.app.build_app`, owns its client (engine,
connection pool) and closes it in `close()`. Every method raises only `StoreError` subclasses;
the probe turns those into `error` results.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime

from checks.model import FeatureView
from checks.observation import EntityValue, OfflineMetric, OfflineObservation, OnlineObservation

EntityKey = tuple[EntityValue, ...]  # one value per join key, in the order of view.join_keys


class OnlineStore(ABC):
    """Where features are served from: read sampled entities, bounded by the sample size."""

    name: str

    @abstractmethod
    def read(
        self, view: FeatureView, keys: Sequence[EntityKey], population: str
    ) -> OnlineObservation:
        """Read the declared features of `view` for exactly these entities (one reading each,
        in order; an entity the store lacks is a reading with `present=False`)."""

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
    def query_entities(self, view: FeatureView, query: str, size: int) -> list[EntityKey]:
        """Up to `size` distinct entity keys, chosen at random by the engine among the rows of
        the user's `query` (one column per join key, named as the join keys)."""

    @abstractmethod
    def close(self) -> None:
        """Release the client this store created."""
