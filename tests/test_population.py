"""Populations: which entities coverage asks for (offline ids, a request query or file, online)."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from checks.model import FeatureView
from checks.result import CheckResult
from checks.serde import to_object
from monitor.app import build_app
from monitor.demo import store as planted
from monitor.errors import SourceNotFound
from monitor.loader import load
from monitor.runs.population import read_ids
from monitor.runs.run import run_once

NOW = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)


def view(
    entity: str | tuple[str, ...] = "user_id", types: dict[str, str] | None = None
) -> FeatureView:
    return FeatureView.model_validate(
        {
            "name": "v",
            "entity": entity,
            "entity_types": types or {"user_id": "int64"},
            "ttl": "1d",
            "features": {"x": "float"},
        }
    )


def test_a_file_of_bare_ids_is_read_as_integers_for_an_integer_key(tmp_path: Path) -> None:
    ids = tmp_path / "ids.csv"
    ids.write_text("7\n8\n\n9\n", encoding="utf-8")
    assert read_ids(ids, view(), 10, "s") == [(7,), (8,), (9,)]


def test_a_header_names_the_join_keys_in_any_order(tmp_path: Path) -> None:
    """Columns are matched by name; extra columns are ignored; keys come in join-key order."""
    ids = tmp_path / "ids.csv"
    ids.write_text("ts,user_id,merchant_id\n1,5,m1\n2,6,m2\n", encoding="utf-8")
    compound = view(("merchant_id", "user_id"), {"user_id": "int64", "merchant_id": "string"})
    assert read_ids(ids, compound, 10, "s") == [("m1", 5), ("m2", 6)]


def test_the_reservoir_keeps_at_most_the_sample_size_uniformly(tmp_path: Path) -> None:
    """2,000 requests, a sample of 100: every request has the same chance (5%)."""
    ids = tmp_path / "ids.csv"
    ids.write_text("user_id\n" + "".join(f"{i}\n" for i in range(2_000)), encoding="utf-8")
    hits = [0] * 10
    for seed in range(100):
        drawn = read_ids(ids, view(), 100, "s", random.Random(seed))
        assert len(drawn) == 100
        for (key,) in drawn:
            assert isinstance(key, int)
            hits[key // 200] += 1
    # 100 draws x 100 keys spread over 10 deciles: 1000 each; 5 sigma is about 150.
    assert all(abs(h - 1000) < 150 for h in hits), hits


def test_a_file_without_the_join_keys_of_a_compound_key_is_refused(tmp_path: Path) -> None:
    ids = tmp_path / "ids.csv"
    ids.write_text("a,b\n1,2\n", encoding="utf-8")
    compound = view(("merchant_id", "user_id"), {"user_id": "int64"})
    with pytest.raises(SourceNotFound, match=r"expected a header naming the join keys"):
        read_ids(ids, compound, 10, "s")


def test_a_missing_ids_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFound, match=r"cannot read the ids file .*nope\.csv"):
        read_ids(tmp_path / "nope.csv", view(), 10, "s")


CONFIG = """\
stores:
  online: {{type: feast-sqlite, path: '{store}/online.db', project: demo}}
  requests: {{type: sql, url: 'sqlite:///{requests}'}}
checks: checks/*.yaml
"""

CHECKS = """\
feature_views:
  - name: user_stats
    entity: user_id
    entity_types: {{user_id: int64}}
    ttl: 1d
    features: {{rolling_7d_revenue: float, purchase_count_30d: int64, last_active_days_ago: int64}}
    online:
      store: online
      population: query
      {source}
    offline: {{store: requests, table: user_stats}}
    checks:
      - {{kind: coverage, min: 0.95}}
"""


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("store")
    planted.build(directory, NOW)
    return directory


def coverage(root: Path, store: Path, source: str) -> CheckResult:
    requests = root / "requests.db"
    with sqlite3.connect(requests) as conn:
        # Yesterday's requests: users 1..100 (1..40 are missing online, 41..70 stale, 71..90
        # null revenue), user 95 three times, and 2000 which never existed.
        rows = [(u,) for u in range(1, 101)] + [(95,), (95,), (2000,)]
        conn.execute("CREATE TABLE requests (user_id INTEGER, requested_at TEXT)")
        conn.executemany("INSERT INTO requests (user_id) VALUES (?)", rows)
        conn.execute("CREATE TABLE user_stats (user_id INTEGER, event_timestamp TIMESTAMP)")
    (root / "checks").mkdir()
    (root / "checks" / "c.yaml").write_text(CHECKS.format(source=source), encoding="utf-8")
    (root / "config.yaml").write_text(CONFIG.format(store=store, requests=requests), "utf-8")
    with build_app(load(root / "config.yaml", {})) as app:
        (result,) = run_once(app, NOW).results
    return result


def test_a_request_query_decides_who_counts(tmp_path: Path, demo_store: Path) -> None:
    """103 requests: 90 of users 1..90 fail (missing, stale, null), 2000 is missing; 12 covered
    (users 91..100 and the two repeats of 95)."""
    result = coverage(tmp_path, demo_store, "query: SELECT user_id FROM requests;")
    info = to_object(result.details)
    assert info["population"] == "query"
    assert result.sample_size == 103
    assert info["covered"] == 12
    assert info["uncovered"] == {
        "missing_key": 41, "undecodable": 0, "absent": 0, "null": 20, "future": 0, "stale": 30,
    }  # fmt: skip
    assert result.value == pytest.approx(12 / 103)


def test_an_ids_file_relative_to_the_check_file(tmp_path: Path, demo_store: Path) -> None:
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "ids.csv").write_text("user_id\n95\n96\n1\n", encoding="utf-8")
    (tmp_path / "checks" / "c.yaml").write_text(
        CHECKS.format(source="ids_file: ids.csv"), encoding="utf-8"
    )
    (tmp_path / "config.yaml").write_text(
        CONFIG.format(store=demo_store, requests=tmp_path / "r.db"), "utf-8"
    )
    sqlite3.connect(tmp_path / "r.db").close()
    with build_app(load(tmp_path / "config.yaml", {})) as app:
        (result,) = run_once(app, NOW).results
    assert to_object(result.details)["population"] == "query"
    assert result.value == pytest.approx(2 / 3)
