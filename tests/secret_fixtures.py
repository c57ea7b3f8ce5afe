"""Real credentials whose passwords hold every character a URL gives a meaning to, for the
secret tests: a Redis ACL user with a few hashes under a key prefix of its own, a PostgreSQL
role and database with one table, both created for the test and removed after it; and the
command line run as a user runs it (a child process, its environment holding the secrets)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from tests.conftest import PG_ADMIN_URL
from tests.redis_fixtures import REDIS_URL, admin_client, unique

REPO = Path(__file__).resolve().parents[1]
HARD_PASSWORD = "S3#cr/t?x@y%z:w"  # every character that ends or splits a URL's user info


@dataclass(frozen=True)
class RedisUser:
    name: str
    prefix: str  # the user may read keys under it only


@dataclass(frozen=True)
class PgRole:
    name: str
    database: str


def redis_user(password: str, entities: int = 5) -> Iterator[RedisUser]:
    """An ACL user allowed `@read` and `@connection` on keys of its own prefix, which holds
    `entities` plain hashes of the hash layout (`x`, and `_ts` = now); removed afterwards."""
    admin = admin_client()
    user = RedisUser(unique("featmon_secrets_"), unique("featmon_secrets_keys_"))
    admin.acl_setuser(
        user.name,
        enabled=True,
        passwords=[f"+{password}"],
        keys=[f"{user.prefix}:*"],
        categories=["+@read", "+@connection"],
        reset=True,
    )
    now = int(time.time())
    for entity in range(entities):
        admin.hset(f"{user.prefix}:u:{entity}", mapping={"x": str(entity / 2), "_ts": str(now)})
    try:
        yield user
    finally:
        for key in admin.scan_iter(match=f"{user.prefix}:*"):
            admin.delete(key)
        admin.acl_deluser(user.name)
        admin.close()


def pg_role(password: str) -> Iterator[PgRole]:
    """A login role with this password and a database of its own holding `public.events`
    (two rows, now), dropped afterwards."""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    role = PgRole(unique("featmon_secrets_role_"), unique("featmon_secrets_db_"))
    quoted = password.replace("'", "''").replace("%", "%%")  # the driver's placeholders
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE ROLE \"{role.name}\" LOGIN PASSWORD '{quoted}'")
        conn.exec_driver_sql(f'CREATE DATABASE "{role.database}"')
    url = sa.make_url(PG_ADMIN_URL).set(database=role.database)
    database = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with database.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE events (user_id int, event_timestamp timestamptz)")
        conn.exec_driver_sql("INSERT INTO events VALUES (1, now()), (2, now())")
        conn.exec_driver_sql(f'GRANT SELECT ON events TO "{role.name}"')
    database.dispose()
    try:
        yield role
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{role.database}" WITH (FORCE)')
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role.name}"')
        admin.dispose()


def pg_host() -> str:
    """host:port of the test server."""
    url = sa.make_url(PG_ADMIN_URL)
    return f"{url.host or '127.0.0.1'}:{url.port or 5432}"


def redis_host() -> str:
    """host:port/db of the test server."""
    parts = urlsplit(REDIS_URL)
    return f"{parts.hostname or '127.0.0.1'}:{parts.port or 6379}{parts.path or '/0'}"


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    stderr: str


def featmon(args: list[str], env: Mapping[str, str], cwd: Path, timeout: float = 120) -> Ran:
    """`featmon ARGS` in a child process whose environment adds `env`."""
    done = subprocess.run(
        [sys.executable, "-m", "monitor.cli.main", *args],
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


HASH_VIEW = """\
feature_views:
  - name: u
    entity: user_id
    ttl: 7d
    features: {{x: float}}
    online: {{store: {store}, sample: 5, population: online}}
    checks:
      - {{kind: null_rate, feature: x, max: 0.5}}
"""
EVENTS_VIEW = """\
feature_views:
  - name: events
    entity: user_id
    ttl: 7d
    timestamp: event_timestamp
    features: {{user_id: int}}
    offline: {{store: {store}, table: public.events}}
    checks:
      - {{kind: row_count, min: 1}}
"""


@pytest.fixture
def hard_redis_user() -> Iterator[RedisUser]:
    yield from redis_user(HARD_PASSWORD)


@pytest.fixture
def hard_pg_role() -> Iterator[PgRole]:
    yield from pg_role(HARD_PASSWORD)
