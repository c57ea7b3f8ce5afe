"""Shared fixtures. Tests talk to real services: PostgreSQL from FEATMON_TEST_PG_URL (default the
local server's `postgres` role over TCP); `./dev test` starts it first."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings

from monitor.state import StateStore
from tests.redis_fixtures import Planter, admin_client
from tests.sidecar import Demo, run_demo

# Property tests judge results, never speed: a busy 2-core machine must not fail them.
settings.register_profile("featmon", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("featmon")

PG_ADMIN_URL = os.environ.get(
    "FEATMON_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards."""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"featmon_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:  # pragma: no cover - environment problem
        admin.dispose()
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_ADMIN_URL} ({exc.orig}); "
            "run the tests with ./dev test, which starts it"
        )
    url = sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextlib.contextmanager
def fresh_schema(pg_url: str, prefix: str) -> Iterator[str]:
    """A new schema `<prefix>_<random>` of the session's database, dropped with all it holds
    afterwards; yields its name."""
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(pg_url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def search_path(pg_url: str, schema: str, *options: str) -> str:
    """`pg_url` whose connections look up `schema` first (and take `options`, as `-c`
    settings of libpq)."""
    settings = " ".join((f"-csearch_path={schema}", *options))
    url = sa.make_url(pg_url).update_query_dict({"options": settings})
    return url.render_as_string(hide_password=False)


@pytest.fixture
def pg_schema(pg_url: str) -> Iterator[str]:
    """A fresh, empty schema of the session's PostgreSQL database; its name."""
    with fresh_schema(pg_url, "test") as schema:
        yield schema


@pytest.fixture
def pg_schema_url(pg_url: str, pg_schema: str) -> str:
    """That schema as the search path of a URL."""
    return search_path(pg_url, pg_schema)


STATE_BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked `every_state_backend` that uses the state database runs once on each
    backend, unless it chooses its backend itself (`parametrize("state_url", ...)`)."""
    chosen = any("state_url" in m.args[0] for m in metafunc.definition.iter_markers("parametrize"))
    marked = metafunc.definition.get_closest_marker("every_state_backend") is not None
    if marked and "state_url" in metafunc.fixturenames and not chosen:
        metafunc.parametrize("state_url", STATE_BACKENDS, indirect=True)


@pytest.fixture
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty state database: a SQLite file (its directory not yet created), or under
    `every_state_backend` also a fresh PostgreSQL schema whose connections use the Asia/Kolkata
    time zone, so that UTC normalisation is tested, not assumed."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'featmon-state.db'}"
        return
    pg_url = request.getfixturevalue("pg_url")
    with fresh_schema(pg_url, "state") as schema:
        yield search_path(pg_url, schema, "-ctimezone=Asia/Kolkata")


@pytest.fixture
def state(state_url: str) -> Iterator[StateStore]:
    """A migrated state database at `state_url`."""
    with StateStore(state_url) as store:
        store.migrate()
        yield store


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """The demo store, run three times into a SQLite state database (tests/sidecar.py), once
    for each module that asks."""
    return run_demo(tmp_path_factory.mktemp("demo"))


@pytest.fixture
def redis_planter() -> Iterator[Planter]:
    """Writes to the shared test Redis, deleting what it wrote afterwards."""
    client = admin_client()
    planter = Planter(client)
    try:
        yield planter
    finally:
        planter.clean()
        client.close()
