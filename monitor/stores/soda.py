"""Soda Core v4 contracts verified on a view's offline store: the one module that imports
soda-core (the optional extra `featmon[soda]`), lazily, the first time a Soda check runs.

Before that import, two switches are set in the process environment, and stay set:

- `SODA_CORE_TELEMETRY_ENABLED=false`: soda-core otherwise sends anonymous usage traces to
  Soda (it reads the switch once, when `soda_core.contracts` is first imported);
- `PYTHON_DOTENV_DISABLED=true`: soda-core otherwise calls python-dotenv's `load_dotenv()`
  on that same import, which looks for a `.env` in every folder from soda-core's own install
  directory up to `/` (or from the working directory, under a REPL or a debugger) and copies
  what it finds into the environment. python-dotenv honours the switch from 1.2 on; with an
  older one the import is refused, so a `.env` is never read by surprise.

Two kinds of store are supported; any other gives an `error` result saying so:

- PostgreSQL (`type: sql`, `soda-postgres`): the Soda data source is built in memory from the
  store's SQLAlchemy URL (host, port, database, user, password as a pydantic `SecretStr`, and
  the URL's query options such as `sslmode`): no file is written and the URL is never logged;
  every message Soda hands back is scrubbed of the password. The connection is read-only
  (`default_transaction_read_only`) with the store's statement and connect timeouts. Soda opens
  it and closes it again within each verification.
- Parquet (`type: parquet`, `soda-duckdb`): a private in-memory DuckDB connection per
  verification, in which the view's files (`read_parquet(..., union_by_name = true)`, the very
  files featmon's own probe reads) are the view `main.<offline path's stem>`; Soda is handed
  that connection and it is closed afterwards. The contract's dataset is
  `<store>/main/<that name>`.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType, ModuleType
from typing import Any, Protocol

from checks.kinds import kind_of
from checks.kinds import soda as soda_kind
from checks.model import FeatureView, SodaCheck
from checks.observation import (
    Diagnostic,
    Outcome,
    ProbeFailure,
    SodaBounds,
    SodaObservation,
    SodaOutcome,
)
from checks.plan import PlannedCheck
from checks.secrets import scrub
from checks.soda_contract import with_dataset
from checks.source import Path
from monitor.abc import OfflineStore
from monitor.errors import QueryFailed, StoreError
from monitor.stores.sql.parquet import ParquetOfflineStore
from monitor.stores.sql.table import SqlOfflineStore

log = logging.getLogger(__name__)

INSTALL = "pip install 'featmon[soda]'"
SWITCHES: Mapping[str, str] = MappingProxyType(
    {"SODA_CORE_TELEMETRY_ENABLED": "false", "PYTHON_DOTENV_DISABLED": "true"}
)
# The soda-core modules featmon uses; `load` imports exactly these.
MODULES = (
    "soda_core.contracts.contract_verification",
    "soda_core.common.yaml",
    "soda_postgres.common.data_sources.postgres_data_source",
    "soda_postgres.common.data_sources.postgres_data_source_connection",
    "soda_duckdb.common.data_sources.duckdb_data_source",
)
_DOTENV_SWITCH_SINCE = (1, 2)
_OUTCOMES: Mapping[str, Outcome] = MappingProxyType(
    {
        "PASSED": "passed",
        "WARN": "warn",
        "FAILED": "failed",
        "NOT_EVALUATED": "not_evaluated",
        "EXCLUDED": "excluded",
    }
)


class SodaUnavailable(StoreError):
    """soda-core (or a python-dotenv that can be switched off) is not installed."""


def available() -> bool:
    """Whether the `soda` extra is installed (without importing it)."""
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("soda_core", "soda_postgres", "soda_duckdb")
    )


def missing_extra_warning(planned: Iterable[PlannedCheck]) -> str | None:
    """What `featmon validate` says when Soda checks are configured but cannot run."""
    ids = [p.id for p in planned if p.kind == "soda"]
    if not ids or available():
        return None
    return (
        f"{len(ids)} soda check results (e.g. {ids[0]}) will be errors: soda-core is not "
        f"installed; install it with: {INSTALL}"
    )


@dataclass(frozen=True)
class Soda:
    """The soda-core entry points featmon uses."""

    verification: ModuleType  # soda_core.contracts.contract_verification
    yaml: ModuleType  # soda_core.common.yaml
    postgres: ModuleType  # soda_postgres...postgres_data_source
    postgres_model: ModuleType  # soda_postgres...postgres_data_source_connection
    duckdb: ModuleType  # soda_duckdb...duckdb_data_source
    version: str


def load(store: str) -> Soda:
    """Switch telemetry and `.env` loading off, then import soda-core (once per process).
    Raises `SodaUnavailable` naming the install command when the extra is missing."""
    os.environ.update(SWITCHES)
    try:
        dotenv = importlib.metadata.version("python-dotenv")
        with warnings.catch_warnings():  # soda-core warns about its own experimental
            warnings.simplefilter("ignore")  # SQL classes as it defines them
            modules = [importlib.import_module(name) for name in MODULES]
        version = importlib.metadata.version("soda-core")
    except (ImportError, importlib.metadata.PackageNotFoundError) as exc:
        raise SodaUnavailable(
            store, f"soda checks need soda-core, which is not installed: {INSTALL}"
        ) from exc
    if _release(dotenv) < _DOTENV_SWITCH_SINCE:
        raise SodaUnavailable(
            store,
            f"python-dotenv {dotenv} cannot be kept from reading .env files (1.2 can): {INSTALL}",
        )
    quiet = logging.getLogger("soda")  # soda-core logs its whole results table at INFO
    if quiet.level == logging.NOTSET:
        quiet.setLevel(logging.WARNING)
    verification, yaml, postgres, postgres_model, duckdb = modules
    return Soda(verification, yaml, postgres, postgres_model, duckdb, version)


def _release(version: str) -> tuple[int, ...]:
    out: list[int] = []
    for part in version.split(".")[:2]:
        digits = "".join(c for c in part if c.isdigit())
        out.append(int(digits or 0))
    return tuple(out)


def observe(
    view: FeatureView, planned: Iterable[PlannedCheck], store: OfflineStore
) -> dict[Path, SodaObservation | ProbeFailure]:
    """Verify each Soda check's contract once (its planned results share the check's path)."""
    out: dict[Path, SodaObservation | ProbeFailure] = {}
    for one in planned:
        if kind_of(one.kind).measured_by != "contract" or one.path in out:
            continue
        try:
            out[one.path] = verify(view, soda_kind.KIND.narrow(one.check), store)
        except StoreError as exc:
            log.warning("soda contract of %s on %s failed: %s", view.name, store.name, exc)
            out[one.path] = ProbeFailure(store.name, view.name, str(exc))
        except Exception as exc:  # the per-run boundary: a bug must not lose the other results
            log.exception("soda contract of %s on %s failed unexpectedly", view.name, store.name)
            reason = f"internal error: {type(exc).__name__}: {exc}"
            out[one.path] = ProbeFailure(store.name, view.name, reason)
    return out


SUPPORTED = "soda checks run on PostgreSQL (type: sql) and Parquet (type: parquet) stores"


@dataclass(frozen=True)
class Target:
    """Where a contract is verified: Soda's dataset name, its data source, and what to close
    and to keep out of messages afterwards."""

    dataset: str
    source: Any  # a soda-core DataSourceImpl
    secret: str = ""
    close: Callable[[], None] | None = None


def verify(view: FeatureView, check: SodaCheck, store: OfflineStore) -> SodaObservation:
    """Verify the check's contract on the view's table; raise a `StoreError` when it cannot."""
    if check.contract is None:
        raise QueryFailed(store.name, f"the soda check of {view.name!r} has no contract")
    if isinstance(store, SqlOfflineStore):
        backend = store.engine.url.get_backend_name()
        if backend != "postgresql":
            raise QueryFailed(store.name, f"{SUPPORTED}, found a {backend} sql store")
        target = _postgres(view, store, load(store.name))
    elif isinstance(store, ParquetOfflineStore):
        target = _parquet(view, store, load(store.name))
    else:
        raise QueryFailed(store.name, f"{SUPPORTED}, found {type(store).__name__}")
    try:
        return _verify(view, check.contract, check.contract_file, store.name, target)
    finally:
        if target.close is not None:
            target.close()


def _postgres(view: FeatureView, store: SqlOfflineStore, soda: Soda) -> Target:
    url = store.engine.url
    table = view.offline.table if view.offline is not None else None
    if not table:
        raise QueryFailed(store.name, f"feature view {view.name!r} names no offline table")
    schema, _, name = table.rpartition(".")
    source = soda.postgres_model.PostgresDataSource.model_validate(
        {"name": store.name, "type": "postgres", "connection": connection(url, store.timeout)}
    )
    return Target(
        dataset=f"{store.name}/{url.database}/{schema or 'public'}/{name}",
        source=soda.postgres.PostgresDataSourceImpl(data_source_model=source),
        secret=url.password or "",
    )


def _parquet(view: FeatureView, store: ParquetOfflineStore, soda: Soda) -> Target:
    """A private in-memory DuckDB in which the view's files are one view, handed to Soda."""
    import duckdb  # noqa: PLC0415  (only Soda checks on Parquet need a connection of their own)

    files = store.files(view)
    name = parquet_dataset_name(view)
    conn = duckdb.connect(":memory:")
    try:
        literal = files.replace("'", "''")
        conn.execute(
            f"CREATE VIEW \"{name}\" AS SELECT * FROM read_parquet('{literal}', union_by_name = true)"
        )
        source = soda.duckdb.DuckDBDataSourceImpl.from_existing_cursor(conn, name=store.name)
    except Exception as exc:
        conn.close()
        raise QueryFailed(
            store.name, f"cannot read the Parquet files of {view.name!r}: {exc}"
        ) from exc
    return Target(dataset=f"{store.name}/main/{name}", source=source, close=conn.close)


def parquet_dataset_name(view: FeatureView) -> str:
    """The name a view's Parquet files have for Soda: the stem of its path (a directory's or a
    glob's last plain part), or the view's name."""
    path = view.offline.path if view.offline is not None else None
    parts = [p for p in (path or "").replace("\\", "/").split("/") if p and not set("*?[") & set(p)]
    stem = parts[-1].removesuffix(".parquet") if parts else ""
    return "".join(c if c.isalnum() or c == "_" else "_" for c in stem) or view.name


def _verify(
    view: FeatureView, contract_text: str, contract_file: str | None, store: str, target: Target
) -> SodaObservation:
    soda = load(store)
    dataset, password = target.dataset, target.secret
    contract = soda.yaml.ContractYamlSource.from_str(
        with_dataset(contract_text, dataset), file_path=contract_file
    )
    started = time.monotonic()
    try:
        with warnings.catch_warnings():  # soda-core flags parts of its own SQL layer as
            warnings.simplefilter("ignore")  # experimental with DeprecationWarning: not ours
            session = soda.verification.ContractVerificationSession.execute(
                contract_yaml_sources=[contract], data_source_impls=[target.source]
            )
    except Exception as exc:  # soda-core's own errors have no common base: translate them all
        raise QueryFailed(store, _scrub(f"soda-core failed: {exc}", password)) from exc
    results = list(session.results)
    errors = tuple(_scrub(e, password) for e in session.get_errors())
    outcomes = {o.relative_path: o for r in results for o in (outcome(c) for c in r.check_results)}
    log.info(
        "store %s: verified the soda contract of %s (%d checks, %d errors) in %.1f ms",
        store,
        dataset,
        len(outcomes),
        len(errors),
        (time.monotonic() - started) * 1000,
    )
    return SodaObservation(
        store=store,
        feature_view=view.name,
        dataset=dataset,
        outcomes=MappingProxyType(outcomes),
        errors=errors,
        soda_version=soda.version,
    )


class Url(Protocol):
    """What is read of a SQLAlchemy URL (this module does not import SQLAlchemy)."""

    @property
    def host(self) -> str | None: ...
    @property
    def port(self) -> int | None: ...
    @property
    def database(self) -> str | None: ...
    @property
    def username(self) -> str | None: ...
    @property
    def password(self) -> str | None: ...
    @property
    def query(self) -> Mapping[str, str | tuple[str, ...]]: ...
    def get_backend_name(self) -> str: ...


def connection(url: Url, timeout: timedelta) -> dict[str, Any]:
    """Soda's PostgreSQL connection properties from a SQLAlchemy URL: read-only, with the
    store's timeouts; the URL's query options (sslmode, sslrootcert, ...) passed through."""
    seconds = max(1, int(timeout.total_seconds()))
    options = f"-c default_transaction_read_only=on -c statement_timeout={seconds * 1000}"
    query = {key: value for key, value in url.query.items() if isinstance(value, str)}
    if "options" in query:
        options = f"{query.pop('options')} {options}"
    host = query.pop("host", None)  # a socket directory: postgresql+psycopg:///db?host=/run/pg
    return {
        **query,
        "host": url.host or host or "localhost",
        "port": url.port or 5432,
        "database": url.database or "postgres",
        "user": url.username or "postgres",
        "password": url.password or "",  # empty: libpq falls back to PGPASSWORD and .pgpass
        "connect_timeout": seconds,
        "options": options,
    }


def outcome(result: Any) -> SodaOutcome:  # noqa: ANN401  (soda-core ships no types)
    """One soda-core `CheckResult` as a featmon `SodaOutcome`."""
    check = result.check
    value = result.threshold_value
    return SodaOutcome(
        relative_path=str(check.relative_path),
        outcome=_OUTCOMES.get(result.outcome.name, "not_evaluated"),
        value=float(value)
        if isinstance(value, int | float) and not isinstance(value, bool)
        else None,
        name=check.name,
        fail=_bounds(check.threshold),
        warn=_bounds(check.warn_threshold),
        diagnostics=MappingProxyType(_diagnostics(result.diagnostic_metric_values)),
        line=check.contract_file_line if isinstance(check.contract_file_line, int) else None,
    )


def _bounds(threshold: Any) -> SodaBounds | None:  # noqa: ANN401  (soda-core ships no types)
    if threshold is None:
        return None

    def number(name: str) -> float | None:
        value = getattr(threshold, name, None)
        return float(value) if isinstance(value, int | float) else None

    return SodaBounds(
        greater_than=number("must_be_greater_than"),
        greater_or_equal=number("must_be_greater_than_or_equal"),
        less_than=number("must_be_less_than"),
        less_or_equal=number("must_be_less_than_or_equal"),
        equal=number("must_be"),
        not_equal=number("must_not_be"),
    )


def _diagnostics(values: object) -> dict[str, Diagnostic]:
    if not isinstance(values, Mapping):
        return {}
    return {
        str(k): v
        for k, v in values.items()
        if isinstance(v, int | float | str) and not isinstance(v, bool)
    }


def _scrub(text: str, password: str) -> str:
    """The first line of a message, with the password (in every form) masked."""
    first = (text.strip().splitlines() or [""])[0]
    return scrub(first, [password])
