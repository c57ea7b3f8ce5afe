"""Session fixtures of the real-Feast tests: Feast 0.67 in a virtualenv of its own (its pins clash
with featmon's), created once under .cache/feast-venv and reused while its stamp matches, and one
build of the planted repository per online store (SQLite, Redis, PostgreSQL), all made by one run
of `feast_build.py` with Feast's interpreter."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from tests.integration import plan

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
FEAST_LOCK = ROOT / "requirements" / "feast.txt"
"""Feast 0.67 and everything it needs, pinned with hashes (`./dev lock` refreshes it)."""
FEAST_VENV = Path(os.environ.get("FEATMON_FEAST_VENV", ROOT / ".cache" / "feast-venv"))
INSTALL_TIMEOUT = 1200
BUILD_TIMEOUT = 600
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_DB = 13
"""The Redis database the tests own: flushed before the build, and nothing else is touched."""
PG_SCHEMA = "feast_it"
PROJECT = "featmon_it"
STORES = ("sqlite", "redis", "postgres")


def _run(command: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="session")
def feast_python() -> Path:
    """The interpreter of a virtualenv holding Feast 0.67, installed from its lock on first use."""
    python = FEAST_VENV / "bin" / "python"
    stamp = FEAST_VENV / ".featmon-requirement"
    wanted = hashlib.sha256(FEAST_LOCK.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        log.info("reusing Feast's virtualenv at %s", FEAST_VENV)
        return python
    shutil.rmtree(FEAST_VENV, ignore_errors=True)
    started = time.monotonic()
    install = ["install", "--quiet", "--require-hashes", "--no-deps", "-r", str(FEAST_LOCK)]
    steps = [
        [sys.executable, "-m", "venv", str(FEAST_VENV)],
        [str(python), "-m", "pip", *install],
    ]
    for step in steps:
        done = _run(step, INSTALL_TIMEOUT)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
            pytest.fail(
                f"installing Feast from {FEAST_LOCK.name} failed ({' '.join(step[:4])}):\n{tail}"
            )
    stamp.write_text(wanted)
    elapsed = time.monotonic() - started
    (FEAST_VENV / ".featmon-install-seconds").write_text(f"{elapsed:.1f}\n")
    log.info("installed Feast from %s into %s in %.1f s", FEAST_LOCK.name, FEAST_VENV, elapsed)
    return python


@dataclass(frozen=True)
class Built:
    """One Feast repository materialized into one online store."""

    store: str
    repo: Path
    online: dict[str, list[dict[str, object]]]  # Feast's get_online_features, per view
    feast_version: str
    timings: dict[str, float]


@dataclass(frozen=True)
class World:
    """The scheduled time and every build of the planted repository."""

    now: datetime
    builds: dict[str, Built]
    pg_url: str


def _online_stores(pg_url: str) -> dict[str, dict[str, object]]:
    pg = sa.make_url(pg_url)
    return {
        "sqlite": {"type": "sqlite", "path": "data/online_store.db"},
        "redis": {
            "type": "redis",
            "connection_string": f"{REDIS_HOST}:{REDIS_PORT},db={REDIS_DB}",
        },
        "postgres": {
            "type": "postgres",
            "host": pg.host or "127.0.0.1",
            "port": pg.port or 5432,
            "database": pg.database,
            "db_schema": PG_SCHEMA,
            "user": pg.username,
            "password": pg.password or "unused",
            "sslmode": "disable",
        },
    }


def _spec(pg_url: str, base: Path, now: datetime) -> dict[str, Any]:
    window = [plan.epoch(now - plan.WINDOW), plan.epoch(now)]
    return {
        "project": PROJECT,
        "builds": {
            store: {"repo": str(base / store / "feature_repo"), "online_store": section}
            for store, section in _online_stores(pg_url).items()
        },
        "rows": {"user_stats": plan.user_rows(now), "merchant_stats": plan.merchant_rows(now)},
        "window": window,
        "lookups": {
            "user_stats": {
                "join_key": "user_id",
                "keys": [1, 2, 20, 40, 159, 161, 180, 181, 200, 999],
                "features": list(plan.USER_FEATURES),
            },
            "merchant_stats": {
                "join_key": "merchant_id",
                "keys": [plan.MERCHANTS[0], plan.MERCHANTS[6], "nobody"],
                "features": list(plan.MERCHANT_FEATURES),
            },
        },
        "requests": [{"user_id": u, "merchant_id": m} for u, m in plan.fraud_requests()],
        "log_time": plan.epoch(now) - len(plan.fraud_requests()),
        "out": str(base / "feast.json"),
    }


def flush_redis_db(db: int = REDIS_DB) -> None:
    """Empty the Redis database `db`, one the real-Feast tests own."""
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db, socket_timeout=5)
    try:
        client.flushdb()
    finally:
        client.close()


def run_feast(python: Path, command: list[str], what: str, timeout: float = BUILD_TIMEOUT) -> None:
    """Run `command` with Feast's interpreter `python` from the repository root (so that
    `-m tests.integration.<script>` imports); fail the test, saying `what` failed and how,
    when it fails or outlasts `timeout` seconds."""
    try:
        done = subprocess.run(
            [str(python), *command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what} took over {timeout:.0f} s")
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-40:])
        pytest.fail(f"{what} failed ({done.returncode}):\n{tail}")


@pytest.fixture(scope="session")
def world(
    feast_python: Path, pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """The planted repository, built and materialized once per store by one Feast process."""
    base = tmp_path_factory.mktemp("feast")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    spec = base / "spec.json"
    spec.write_text(json.dumps(_spec(pg_url, base, now)), encoding="utf-8")
    flush_redis_db()
    started = time.monotonic()
    command = ["-m", "tests.integration.feast_build", str(spec)]
    run_feast(feast_python, command, "building the Feast repositories")
    result = json.loads((base / "feast.json").read_text(encoding="utf-8"))
    builds = {
        store: Built(
            store=store,
            repo=base / store / "feature_repo",
            online=build["online"],
            feast_version=result["feast_version"],
            timings=build["timings"],
        )
        for store, build in result["builds"].items()
    }
    log.info(
        "built and materialized %s with Feast %s in %.1f s",
        ", ".join(builds),
        result["feast_version"],
        time.monotonic() - started,
    )
    try:
        yield World(now, builds, pg_url)
    finally:
        flush_redis_db()
