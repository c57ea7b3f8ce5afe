"""The Feast repository reader and `featmon init --from-feast`, on the registry.db that real Feast
0.67 wrote in the integration suite (tests/integration/data/registry.db: project featmon_it, views
user_stats and merchant_stats, each materialized twice over the same window) and
feature_store.yaml files written here."""

from __future__ import annotations

import contextlib
import shutil
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from checks.errors import ConfigError
from monitor.cli.main import main
from monitor.feast.init import InitError, init_from_feast
from monitor.feast.registry import (
    BatchSource,
    Entity,
    Feature,
    FeatureView,
    RegistryError,
    parse_registry,
    read_registry,
)
from monitor.feast.views import Naming, freshness_bounds, view_document
from monitor.loader import load

FIXTURE = Path(__file__).parent / "integration" / "data" / "registry.db"
NOW = datetime(2026, 12, 8, 5, 0, tzinfo=UTC)
WINDOW = (datetime(2026, 12, 6, 3, 55, tzinfo=UTC), datetime(2026, 12, 8, 3, 55, tzinfo=UTC))
SQLITE = "online_store: {type: sqlite, path: data/online_store.db}\n"


def repo(tmp_path: Path, body: str = SQLITE, project: str = "featmon_it") -> Path:
    """A Feast repository: feature_store.yaml and the real registry in data/."""
    root = tmp_path / "feature_repo"
    (root / "data").mkdir(parents=True)
    shutil.copy(FIXTURE, root / "data" / "registry.db")
    default = "" if body.startswith("registry:") else "registry: data/registry.db\n"
    text = f"project: {project}\nprovider: local\n{default}" + body
    (root / "feature_store.yaml").write_text(text, encoding="utf-8")
    return root


def written(out: Path, name: str = "config.yaml") -> Any:  # noqa: ANN401 - YAML as loaded
    return yaml.safe_load((out / name).read_text(encoding="utf-8"))


# --- the registry ------------------------------------------------------------------------------


def test_the_real_registry_reads_views_entities_and_materializations() -> None:
    """Features with their ValueTypes, join keys, TTLs, file sources and both materializations."""
    registry = read_registry(FIXTURE)
    views = {v.name: v for v in registry.views_of("featmon_it")}
    users = views["user_stats"]
    assert [(f.name, f.type_name) for f in users.features] == [
        ("revenue", "DOUBLE"),
        ("orders", "INT64"),
        ("segment", "STRING"),
    ]
    assert users.entity_columns == (Feature("user_id", 4),)
    assert (users.ttl, users.online, dict(users.tags)) == (
        timedelta(days=1),
        True,
        {"team": "growth"},
    )
    assert users.batch_source == BatchSource(
        name="user_stats_source",
        kind="BATCH_FILE",
        timestamp_field="event_timestamp",
        created_timestamp_column="created",
        path="data/user_stats.parquet",
    )
    assert users.materialized == (WINDOW, WINDOW)
    assert users.version == 1  # applied twice with different schemas
    assert views["merchant_stats"].ttl == timedelta(hours=2)
    assert registry.entities_of("featmon_it")["user"] == Entity("user", "user_id", 4)
    assert registry.views_of("other") == []


def test_the_materialization_period_is_the_median_gap_between_ends() -> None:
    """Ends at 0h, 1h, 2h and 4h: gaps 1h, 1h, 2h, median 1h; one distinct end has none."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ends = [start + timedelta(hours=h) for h in (0, 1, 2, 4)]
    view = synthetic(materialized=tuple((None, end) for end in ends))
    assert view.materialization_period == timedelta(hours=1)
    assert synthetic(materialized=(WINDOW, WINDOW)).materialization_period is None


@pytest.mark.parametrize(
    "data",
    [b"not a registry", b"\x0a\xff\xff\xff\xff\x0f", b"\x07", b"\x0a\x02\x08"],
    ids=["text", "length-past-end", "bad-wire-type", "truncated"],
)
def test_bytes_that_are_no_registry_raise_registry_error(data: bytes) -> None:
    """Garbage, lengths past the end and truncation raise RegistryError naming the source."""
    with pytest.raises(RegistryError, match=r"^registry\.db: is not a Feast registry"):
        parse_registry(data, "registry.db")


def test_an_empty_file_is_an_empty_registry_error() -> None:
    """Zero bytes: Feast never wrote it."""
    with pytest.raises(RegistryError, match="is empty"):
        parse_registry(b"", "registry.db")


def test_a_missing_registry_file_names_its_path(tmp_path: Path) -> None:
    """An unreadable registry is a RegistryError naming the path."""
    with pytest.raises(RegistryError, match=r"nowhere\.db: cannot read the registry"):
        read_registry(tmp_path / "nowhere.db")


@settings(max_examples=200, deadline=None)
@given(cut=st.integers(min_value=0), flip=st.integers(min_value=0), bit=st.integers(0, 7))
def test_damaged_registries_read_or_raise_registry_error(cut: int, flip: int, bit: int) -> None:
    """Any truncation or flipped bit of a real registry parses or raises RegistryError, never
    anything else."""
    data = bytearray(FIXTURE.read_bytes()[: cut % (len(FIXTURE.read_bytes()) + 1)])
    if data:
        data[flip % len(data)] ^= 1 << bit
    with contextlib.suppress(RegistryError):
        parse_registry(bytes(data), "registry.db")


# --- feature_store.yaml -----------------------------------------------------------------------


def init_error(tmp_path: Path, body: str) -> str:
    with pytest.raises(ConfigError) as info:
        init_from_feast(repo(tmp_path, body), tmp_path / "out", NOW)
    return str(info.value)


def test_an_online_store_featmon_cannot_read_is_located(tmp_path: Path) -> None:
    """A DynamoDB online store is reported at feature_store.yaml, its line and key."""
    message = init_error(tmp_path, "online_store:\n  type: dynamodb\n")
    assert "feature_store.yaml:5: online_store.type" in message
    assert "dynamodb" in message


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ("registry: {registry_type: sql, path: postgresql://db/feast}\n", "registry.registry_type"),
        ("online_store: {type: postgres, host: db}\n", "online_store"),
        ("online_store: {type: redis, redis_type: redis_sentinel}\n", "online_store.redis_type"),
        ("entity_key_serialization_version: 2\n", "entity_key_serialization_version"),
        ("offline_store: {type: postgres, host: db}\n", "offline_store"),
    ],
    ids=["sql-registry", "postgres-missing-fields", "sentinel", "key-version-2", "offline-pg"],
)
def test_bad_feature_store_yaml_names_the_file_and_field(
    tmp_path: Path, body: str, where: str
) -> None:
    """Every mistake names feature_store.yaml and the key, and says what was expected."""
    message = init_error(tmp_path, body)
    assert "feature_store.yaml:" in message
    assert f": {where}" in message


def test_a_missing_feature_store_yaml_is_a_config_error(tmp_path: Path) -> None:
    """No feature_store.yaml in the directory: the file is named."""
    with pytest.raises(ConfigError, match=r"feature_store\.yaml: cannot read the file"):
        init_from_feast(tmp_path, tmp_path / "out", NOW)


def test_a_feature_store_yaml_past_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    """feature_store.yaml is read within the YAML input limits, as featmon's own files are."""
    with (tmp_path / "feature_store.yaml").open("wb") as file:
        file.truncate(2 * 1024 * 1024)
    with pytest.raises(
        ConfigError,
        match=r"feature_store\.yaml: expected a file of at most 1048576 bytes, found 2097152 bytes",
    ):
        init_from_feast(tmp_path, tmp_path / "out", NOW)


def test_a_corrupt_registry_is_a_registry_error_naming_it(tmp_path: Path) -> None:
    """The registry path from feature_store.yaml is read, and named when it is no registry."""
    root = repo(tmp_path)
    (root / "data" / "registry.db").write_bytes(b"\x0a\xff\xff")
    with pytest.raises(RegistryError, match=r"data/registry\.db: is not a Feast registry"):
        init_from_feast(root, tmp_path / "out", NOW)


def test_a_project_absent_from_the_registry_is_an_init_error(tmp_path: Path) -> None:
    """The error lists the projects the registry holds."""
    with pytest.raises(InitError, match=r"project 'shop', found none .*\['featmon_it'\]"):
        init_from_feast(repo(tmp_path, project="shop"), tmp_path / "out", NOW)


# --- what init writes --------------------------------------------------------------------------


def test_a_sqlite_repository_becomes_a_valid_configuration(tmp_path: Path) -> None:
    """Stores relative to the output directory, one check file per view and one per model
    with a serving log, and it all loads."""
    out = tmp_path / "out"
    result = init_from_feast(repo(tmp_path), out, NOW)
    assert sorted(p.relative_to(out).as_posix() for p in result.files) == [
        "checks/fraud_v1.model.yaml",
        "checks/merchant_stats.yaml",
        "checks/user_stats.yaml",
        "config.yaml",
    ]
    assert written(out)["stores"] == {
        "feast_online": {
            "type": "feast-sqlite",
            "path": "../feature_repo/data/online_store.db",
            "project": "featmon_it",
        },
        "feast_offline": {"type": "parquet", "root": "../feature_repo"},
    }
    loaded = load(out / "config.yaml", {})
    assert [v.view.name for v in loaded.views] == ["merchant_stats", "user_stats"]
    assert [m.name for m in loaded.models] == ["fraud_v1"]
    assert result.env == ()


def test_the_check_file_carries_feasts_facts_and_default_checks(tmp_path: Path) -> None:
    """Join key and type, features and types, TTL, source and the default checks with
    TTL-derived freshness bounds; the header says where it came from."""
    out = tmp_path / "out"
    init_from_feast(repo(tmp_path), out, NOW)
    text = (out / "checks" / "user_stats.yaml").read_text(encoding="utf-8")
    assert text.startswith("# Generated by `featmon init --from-feast` on 2026-12-08 05:00 UTC")
    assert "registry:           " in text
    assert "Materialized 2 times, last up to 2026-12-08 03:55 UTC." in text
    (view,) = yaml.safe_load(text)["feature_views"]
    assert view == {
        "name": "user_stats",
        "entity": "user_id",
        "entity_types": {"user_id": "int64"},
        "ttl": "1d",
        "timestamp": "event_timestamp",
        "features": {"revenue": "double", "orders": "int64", "segment": "string"},
        "online": {"store": "feast_online", "population": "offline", "lookback": "30d"},
        "offline": {
            "store": "feast_offline",
            "path": "data/user_stats.parquet",
            "ingested_at": "created",
        },
        "labels": {"feast_project": "featmon_it", "team": "growth"},
        "checks": [
            {"kind": "freshness", "quantile": "p99", "warn": "12h", "max": "1d", "severity": "P1"},
            {"kind": "coverage", "min": 0.95, "severity": "P1"},
            {"kind": "null_rate", "target": "online", "max": 0.01, "severity": "P2"},
            {"kind": "schema_drift", "target": "online", "severity": "P2"},
            {"kind": "freshness", "target": "offline", "max": "1d", "severity": "P2"},
            {"kind": "schema_drift", "target": "offline", "allow_added": True, "severity": "P3"},
        ],
    }


@pytest.mark.parametrize(
    ("connection", "redis_type", "url", "cluster"),
    [
        ("localhost:6379", "redis", "redis://localhost:6379/0", False),
        (
            "cache:6380,db=3,password=s3cret!,ssl=true",
            "redis",
            "rediss://:${FEAST_ONLINE_PASSWORD}@cache:6380/3",
            False,
        ),
        (
            "cache:6379,username=feast,password=s3cret!",
            "redis",
            "redis://feast:${FEAST_ONLINE_PASSWORD}@cache:6379/0",
            False,
        ),
        (
            "n1:7000,n2:7001,password=s3cret!",
            "redis_cluster",
            "redis://:${FEAST_ONLINE_PASSWORD}@n1:7000/0",
            True,
        ),
    ],
    ids=["plain", "tls-db-password", "username", "cluster"],
)
def test_redis_connection_strings_become_urls_without_the_password(
    tmp_path: Path, connection: str, redis_type: str, url: str, cluster: bool
) -> None:
    """Feast's `host:port,db=..,password=..,ssl=..` is a redis(s):// URL in Feast's layout; the
    password is read from ${FEAST_ONLINE_PASSWORD} and written nowhere."""
    body = f"online_store:\n  type: redis\n  redis_type: {redis_type}\n  connection_string: '{connection}'\n"
    out = tmp_path / "out"
    result = init_from_feast(repo(tmp_path, body), out, NOW)
    store = written(out)["stores"]["feast_online"]
    assert store == {
        "type": "redis",
        "url": url,
        "cluster": cluster,
        "layout": "feast",
        "project": "featmon_it",
    }
    assert all("s3cret" not in path.read_text(encoding="utf-8") for path in result.files)
    assert result.env == (("FEAST_ONLINE_PASSWORD",) if "password" in connection else ())


POSTGRES = """online_store:
  type: postgres
  host: db.internal
  port: 5433
  database: feast
  db_schema: features
  user: feast_ro
  password: hunter2
  sslmode: verify-full
  sslrootcert_path: /etc/ssl/feast-ca.pem
"""


def test_a_postgres_online_store_becomes_feast_sql_with_schema_and_tls(tmp_path: Path) -> None:
    """host, port, database, db_schema (as the search_path), sslmode and CA become the URL;
    the password comes from ${FEAST_ONLINE_PASSWORD}, never from feature_store.yaml."""
    out = tmp_path / "out"
    result = init_from_feast(repo(tmp_path, POSTGRES), out, NOW)
    store = written(out)["stores"]["feast_online"]
    assert store["type"] == "feast-sql"
    assert all("hunter2" not in path.read_text(encoding="utf-8") for path in result.files)
    assert result.env == ("FEAST_ONLINE_PASSWORD",)
    loaded = load(out / "config.yaml", {"FEAST_ONLINE_PASSWORD": "pw"})
    config = loaded.config.stores["feast_online"]
    assert config.type == "feast-sql"
    url = sa.make_url(config.url.get_secret_value())
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "feast_ro",
        "pw",
        "db.internal",
        5433,
        "feast",
    )
    assert dict(url.query) == {
        "sslmode": "verify-full",
        "sslrootcert": "/etc/ssl/feast-ca.pem",
        "options": "-csearch_path=features",
    }


def test_an_unset_password_variable_fails_validation_naming_it(tmp_path: Path) -> None:
    """Without FEAST_ONLINE_PASSWORD the generated config does not load, and says why."""
    out = tmp_path / "out"
    init_from_feast(repo(tmp_path, POSTGRES), out, NOW)
    with pytest.raises(ConfigError, match="FEAST_ONLINE_PASSWORD to be set"):
        load(out / "config.yaml", {})


def test_a_postgres_offline_store_and_file_sources_leave_views_online_only(tmp_path: Path) -> None:
    """File sources under a PostgreSQL offline store cannot be read: the views sample random
    online keys, no offline store is written, and the note says so. The file destination of
    fraud_v1's serving log gets a Parquet store of its own."""
    body = (
        SQLITE + "offline_store: {type: postgres, host: db, database: dw, user: u, password: p}\n"
    )
    out = tmp_path / "out"
    init_from_feast(repo(tmp_path, body), out, NOW)
    assert written(out)["stores"].keys() == {"feast_online", "feast_log_fraud_v1"}
    assert written(out)["stores"]["feast_log_fraud_v1"] == {
        "type": "parquet",
        "root": "../feature_repo/data/logs/fraud_v1",
    }
    (view,) = written(out, "checks/user_stats.yaml")["feature_views"]
    assert "offline" not in view
    assert view["online"] == {"store": "feast_online", "population": "online"}
    assert "Coverage samples random online keys: its batch_file batch source" in (
        out / "checks" / "user_stats.yaml"
    ).read_text(encoding="utf-8")


def test_an_offline_store_featmon_cannot_read_is_a_note(tmp_path: Path) -> None:
    """A BigQuery offline store leaves the views online-only and is named in the notes."""
    result = init_from_feast(
        repo(tmp_path, SQLITE + "offline_store: {type: bigquery}\n"), tmp_path / "out", NOW
    )
    assert "the bigquery offline store is not read by featmon" in result.notes


def test_existing_files_are_not_overwritten_without_force(tmp_path: Path) -> None:
    """A second init refuses and names the files; with force it replaces them and points at
    check files it did not write, which the glob still loads."""
    root, out = repo(tmp_path), tmp_path / "out"
    init_from_feast(root, out, NOW)
    (out / "checks" / "old_view.yaml").write_text("feature_views: []\n", encoding="utf-8")
    before = (out / "config.yaml").read_text(encoding="utf-8")
    with pytest.raises(InitError, match=r"refusing to overwrite .*config\.yaml.*--force"):
        init_from_feast(root, out, NOW + timedelta(hours=1))
    assert (out / "config.yaml").read_text(encoding="utf-8") == before
    again = init_from_feast(root, out, NOW + timedelta(hours=1), force=True)
    assert (out / "config.yaml").read_text(encoding="utf-8") != before
    assert again.stale == (out / "checks" / "old_view.yaml",)


# --- the command line --------------------------------------------------------------------------


def test_the_init_command_writes_and_says_what_to_do_next(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`featmon init --from-feast feature_store.yaml --out DIR` exits 0 and lists the files."""
    root, out = repo(tmp_path, POSTGRES), tmp_path / "out"
    assert main(["init", "--from-feast", str(root / "feature_store.yaml"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out / 'config.yaml'}" in printed
    assert "Set FEAST_ONLINE_PASSWORD in the environment, then:" in printed
    assert f"featmon validate --config {out / 'config.yaml'}" in printed


def test_the_init_command_exits_3_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A refusal, a bad registry and a bad feature_store.yaml all exit 3 and say why."""
    root, out = repo(tmp_path), tmp_path / "out"
    args = ["init", "--from-feast", str(root), "--out", str(out)]
    assert main(args) == 0
    assert main(args) == 3
    assert "refusing to overwrite" in capsys.readouterr().err
    (root / "data" / "registry.db").write_bytes(b"junk")
    assert main([*args, "--force"]) == 3
    assert "is not a Feast registry" in capsys.readouterr().err
    (root / "feature_store.yaml").write_text("provider: local\n", encoding="utf-8")
    assert main([*args, "--force"]) == 3
    assert "project" in capsys.readouterr().err


# --- views and thresholds ----------------------------------------------------------------------


H, D = timedelta(hours=1), timedelta(days=1)


@pytest.mark.parametrize(
    ("ttl", "period", "expected"),
    [
        (D, None, (D, 12 * H, D)),
        (D, H, (D, 2 * H, D)),
        (2 * H, 2 * H, (2 * H, H, 2 * H)),
        (timedelta(0), None, (30 * D, 15 * D, 30 * D)),
        (timedelta(0), 10 * D, (40 * D, 20 * D, 40 * D)),
    ],
)
def test_freshness_bounds_follow_the_ttl_and_the_materialization_period(
    ttl: timedelta, period: timedelta | None, expected: tuple[timedelta, timedelta, timedelta]
) -> None:
    """(ttl, warn, max): max = TTL (30 days, or 4 periods, without one); warn = 2 periods when
    under it, else half of it."""
    bounds = freshness_bounds(ttl, period)
    assert (bounds.ttl, bounds.warn, bounds.max) == expected


def synthetic(**changes: Any) -> FeatureView:  # noqa: ANN401 - any FeatureView field, checked by dataclasses.replace
    base: dict[str, Any] = {
        "name": "v",
        "project": "p",
        "entities": ("user",),
        "features": (Feature("x", 5),),
        "entity_columns": (Feature("user_id", 4),),
        "ttl": timedelta(hours=1),
        "online": True,
        "batch_source": BatchSource("s", "BATCH_FILE", "ts", "", path="data/v.parquet"),
        "materialized": (),
        "tags": {},
    }
    return FeatureView(**(base | changes))


NAMING = Naming("p", "parquet", False, {"user": Entity("user", "user_id", 4)})


def test_lists_are_their_element_type_and_maps_are_left_out() -> None:
    """Int64 lists are int64; a Map is not monitored (noted), so undeclared fields are allowed
    online; offline schema drift is not suggested for list columns."""
    view = synthetic(features=(Feature("xs", 14), Feature("m", 20), Feature("x", 5)))
    generated = view_document(view, NAMING)
    assert generated.document is not None
    assert generated.document["features"] == {"xs": "int64", "x": "double"}
    assert generated.notes == ("view 'v': feature 'm' (MAP) is not monitored",)
    kinds = [
        (c["kind"], c.get("target"), c.get("allow_added")) for c in generated.document["checks"]
    ]
    assert ("schema_drift", "online", True) in kinds
    assert all(target != "offline" for kind, target, _ in kinds if kind == "schema_drift")


@pytest.mark.parametrize(
    ("changes", "note"),
    [
        ({"entities": ("__dummy",)}, "has no entity"),
        ({"online": False, "batch_source": None}, "is not online and no batch source"),
        ({"features": (Feature("m", 20),)}, "no feature featmon can read"),
    ],
)
def test_views_featmon_cannot_monitor_are_skipped_with_a_note(
    changes: dict[str, Any], note: str
) -> None:
    """Entity-less views, views neither online nor readable offline, and views of only
    unreadable features produce no document, and say why."""
    generated = view_document(synthetic(**changes), NAMING)
    assert generated.document is None
    assert note in generated.notes[0]


def test_an_offline_only_view_gets_offline_checks() -> None:
    """online False: offline freshness, null rate and schema drift only."""
    generated = view_document(synthetic(online=False), NAMING)
    assert generated.document is not None
    assert "online" not in generated.document
    assert [(c["kind"], c["target"]) for c in generated.document["checks"]] == [
        ("freshness", "offline"),
        ("null_rate", "offline"),
        ("schema_drift", "offline"),
    ]


def test_renamed_columns_and_versioned_tables() -> None:
    """A field_mapping keeps the source out (names differ); with versioning on, the online
    table is {project}_{view}_v{N}."""
    source = BatchSource("s", "BATCH_FILE", "ts", "", path="d.parquet", field_mapping={"a": "x"})
    versioned = Naming("p", "parquet", True, NAMING.entities)
    generated = view_document(synthetic(batch_source=source, version=3), versioned)
    assert generated.document is not None
    assert "offline" not in generated.document
    assert generated.document["online"] == {
        "store": "feast_online",
        "population": "online",
        "table": "p_v_v3",
    }


def test_the_generated_yaml_is_indented_like_the_examples(tmp_path: Path) -> None:
    """Lists sit under their key, two spaces in, as in examples/checks."""
    out = tmp_path / "out"
    init_from_feast(repo(tmp_path), out, NOW)
    text = (out / "checks" / "merchant_stats.yaml").read_text(encoding="utf-8")
    assert (
        textwrap.dedent(
            """\
        feature_views:
          - name: merchant_stats
        """
        )
        in text
    )
