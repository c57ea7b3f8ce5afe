"""`build_app(loaded) -> App`: the one place that builds the object graph from a validated
configuration. Tests build their own app; nothing here is module-level state."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from checks.result import RunResult
from checks.secrets import Secrets
from monitor.abc import OfflineStore, OnlineStore
from monitor.config import (
    FeastSqliteStoreConfig,
    FeastSqlStoreConfig,
    ParquetStoreConfig,
    RedisStoreConfig,
    SqlStoreConfig,
    StoreConfig,
)
from monitor.loader import Loaded
from monitor.runs.probe import Stores
from monitor.state import StateError, StateStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class App:
    """A loaded configuration and the stores built from it. Closing the app closes the stores."""

    loaded: Loaded
    stores: Stores
    state: StateStore | None = None  # None: history is not recorded (unavailable or not asked)

    def record(self, run: RunResult) -> None:
        """Keep the run in the state database; a state outage is logged, never fatal."""
        if self.state is None:
            return
        try:
            self.state.record_run(run)
        except StateError as exc:
            log.error("run %s was not recorded in the state database: %s", run.run_id, exc)

    def close(self) -> None:
        stores: list[OnlineStore | OfflineStore] = [
            *self.stores.online.values(),
            *self.stores.offline.values(),
        ]
        for store in stores:
            try:
                store.close()
            except Exception:  # closing one store must not keep the others open
                log.exception("closing store %s failed", store.name)
        if self.state is not None:
            self.state.close()

    def __enter__(self) -> App:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_app(loaded: Loaded, with_state: bool = True) -> App:
    """Build the stores (and, unless told not to, open and migrate the state database)."""
    online: dict[str, OnlineStore] = {}
    offline: dict[str, OfflineStore] = {}
    with contextlib.ExitStack() as cleanup:
        for name, config in loaded.config.stores.items():
            store = _build_store(name, config, loaded)
            cleanup.callback(store.close)
            if isinstance(store, OnlineStore):
                online[name] = store
            else:
                offline[name] = store
        state = open_state(loaded) if with_state else None
        if state is not None:
            cleanup.callback(state.close)
        cleanup.pop_all()  # every store built: the app owns them now
    secrets = Secrets.within(loaded.config)
    return App(loaded, Stores(online, offline, state=state, secrets=secrets), state)


def open_state(loaded: Loaded) -> StateStore | None:
    """The migrated state database, or None (logged) when it cannot be opened: one run of
    checks is still worth doing without history."""
    store = StateStore(loaded.config.state.url.get_secret_value())
    try:
        applied = store.migrate()
    except StateError as exc:
        store.close()
        log.error(
            "the state database %s is unavailable, history is not recorded: %s", store.database, exc
        )
        return None
    if applied:
        log.info("migrated the state database %s to version %d", store.database, applied[-1])
    return store


def _build_store(name: str, config: StoreConfig, loaded: Loaded) -> OnlineStore | OfflineStore:
    # Imported here so that a backend's driver loads only when a store of its type is configured.
    if isinstance(config, FeastSqliteStoreConfig | FeastSqlStoreConfig):
        from monitor.stores.sql.feast_online import FeastSqlOnlineStore  # noqa: PLC0415 - a store's driver is imported only when a config names that store

        return FeastSqlOnlineStore(name, config)
    if isinstance(config, RedisStoreConfig):
        from monitor.stores.redis import RedisOnlineStore  # noqa: PLC0415 - a store's driver is imported only when a config names that store

        # The store must know every view it serves: Feast shares one hash per entity between
        # views, and fields of known views are not orphans.
        views = [v.view for v in loaded.views if v.view.online and v.view.online.store == name]
        return RedisOnlineStore(name, config, known_views=views)
    if isinstance(config, ParquetStoreConfig):
        from monitor.stores.sql.parquet import ParquetOfflineStore  # noqa: PLC0415 - a store's driver is imported only when a config names that store

        return ParquetOfflineStore(name, config)
    if isinstance(config, SqlStoreConfig):
        from monitor.stores.sql.table import SqlOfflineStore  # noqa: PLC0415 - a store's driver is imported only when a config names that store

        return SqlOfflineStore(name, config)
    raise TypeError(f"no store backend for {type(config).__name__}")  # pragma: no cover
