"""Loading config.yaml and check files: every problem of every file, located, all at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks.errors import ConfigError
from monitor.config import FeastSqliteStoreConfig, ParquetStoreConfig, SqlStoreConfig
from monitor.loader import load

CONFIG = """\
stores:
  online: {type: feast-sqlite, path: data/online.db, project: shop}
  lake: {type: parquet, root: lake}
  warehouse: {type: sql, url: "sqlite:///wh.db"}
checks: checks/*.yaml
"""

VIEW = """\
feature_views:
  - name: {name}
    entity: user_id
    ttl: 1d
    features: {{spend: float, visits: int64}}
    online: {{store: online}}
    offline: {{store: lake, path: users.parquet}}
    checks:
      - {{kind: freshness, max: 1h}}
      - {{kind: null_rate, max: 0.1}}
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "config.yaml"


def problems(root: Path, files: dict[str, str], env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(write(root, files), env or {})
    return [str(p).replace(str(root) + "/", "") for p in caught.value.problems]


def test_a_valid_config_plans_every_check(tmp_path: Path) -> None:
    """Two checks, one expanded per feature: three planned checks with derived ids."""
    loaded = load(
        write(tmp_path, {"config.yaml": CONFIG, "checks/a.yaml": VIEW.format(name="users")}), {}
    )
    assert [p.id for p in loaded.planned] == [
        "users.freshness@online",
        "users.null_rate.spend@online",
        "users.null_rate.visits@online",
    ]


def test_relative_store_paths_resolve_against_the_config_directory(tmp_path: Path) -> None:
    """Paths are relative to config.yaml, not to the working directory."""
    loaded = load(
        write(tmp_path, {"config.yaml": CONFIG, "checks/a.yaml": VIEW.format(name="u")}), {}
    )
    stores = loaded.config.stores
    online, lake, warehouse = stores["online"], stores["lake"], stores["warehouse"]
    assert isinstance(online, FeastSqliteStoreConfig)
    assert isinstance(lake, ParquetStoreConfig)
    assert isinstance(warehouse, SqlStoreConfig)
    assert online.path == str(tmp_path / "data" / "online.db")
    assert lake.root == str(tmp_path / "lake")
    assert warehouse.url.get_secret_value() == f"sqlite:///{tmp_path / 'wh.db'}"


def test_problems_of_several_files_are_reported_together(tmp_path: Path) -> None:
    """A typo in config.yaml's checks is not needed to see the check files' own problems."""
    bad_view = (
        VIEW.format(name="users")
        .replace("max: 1h", "max: 1 hour")
        .replace("kind: null_rate", "kind: null_rat")
    )
    found = problems(
        tmp_path,
        {
            "config.yaml": CONFIG,
            "checks/a.yaml": bad_view,
            "checks/b.yaml": "feature_views:\n  - name: x\n    entity: id\n    ttl: 1d\n"
            "    features: {a: float}\n    colour: red\n",
        },
    )
    assert found == [
        "checks/a.yaml:9: feature_views[0].checks[0].max: expected a duration such as 30s, 5m, "
        "1h30m or 7d, found '1 hour'",
        "checks/a.yaml:10: feature_views[0].checks[1].kind: expected 'kind' to be one of "
        "'freshness', 'coverage', 'null_rate', 'schema_drift', 'late_arrivals', 'row_count', "
        "'duplicates', 'range', 'skew', 'distribution_drift', 'anomaly', 'soda', "
        "found 'null_rat'",
        "checks/b.yaml:6: feature_views[0].colour: unknown key 'colour'",
    ]


def test_a_store_that_does_not_exist_is_named_with_the_choices(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        {
            "config.yaml": CONFIG,
            "checks/a.yaml": VIEW.format(name="u").replace("{store: online}", "{store: onlnie}"),
        },
    )
    assert found == [
        "checks/a.yaml:6: feature_views[0].online.store: expected one of the online stores "
        "['online'], found 'onlnie'"
    ]


def test_an_offline_store_used_online_is_refused(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        {
            "config.yaml": CONFIG,
            "checks/a.yaml": VIEW.format(name="u").replace("{store: online}", "{store: lake}"),
        },
    )
    assert found == [
        "checks/a.yaml:6: feature_views[0].online.store: expected an online store, "
        "found 'lake' of type parquet"
    ]


def test_a_sql_store_needs_a_table_not_a_path(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        {
            "config.yaml": CONFIG,
            "checks/a.yaml": VIEW.format(name="u").replace("store: lake", "store: warehouse"),
        },
    )
    assert found == [
        "checks/a.yaml:7: feature_views[0].offline.table: expected `table` for the sql store "
        "'warehouse', found none"
    ]


def test_a_view_name_used_twice_points_at_the_first(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        {
            "config.yaml": CONFIG,
            "checks/a.yaml": VIEW.format(name="users"),
            "checks/b.yaml": VIEW.format(name="users"),
        },
    )
    assert found == [
        "checks/b.yaml:2: feature_views[0].name: expected a unique view name, found 'users' "
        "again (first at checks/a.yaml:2)"
    ]


def test_two_checks_with_the_same_id_must_be_named(tmp_path: Path) -> None:
    view = VIEW.format(name="u") + "      - {kind: freshness, max: 2h}\n"
    found = problems(tmp_path, {"config.yaml": CONFIG, "checks/a.yaml": view})
    assert len(found) == 1
    assert found[0].startswith(
        "checks/a.yaml:11: feature_views[0].checks[2]: expected a unique check id"
    )
    assert "give one a `name`" in found[0]


def test_a_glob_that_matches_nothing_is_a_problem(tmp_path: Path) -> None:
    found = problems(tmp_path, {"config.yaml": CONFIG})
    assert found == [
        "config.yaml:5: checks: expected the glob to match at least one check file, "
        "found none for 'checks/*.yaml'"
    ]


def test_an_unset_variable_is_a_problem_and_a_default_is_used(tmp_path: Path) -> None:
    config = CONFIG.replace(
        "online: {type: feast-sqlite, path: data/online.db, project: shop}",
        "online:\n    type: feast-sqlite\n    path: data/online.db\n    project: ${FEAST_PROJECT}",
    ).replace("root: lake", 'root: "${LAKE:-lake}"')
    found = problems(tmp_path, {"config.yaml": config, "checks/a.yaml": VIEW.format(name="u")})
    assert found == [
        "config.yaml:5: stores.online.project: expected environment variable FEAST_PROJECT "
        "to be set, found it unset"
    ]
    loaded = load(tmp_path / "config.yaml", {"FEAST_PROJECT": "shop"})
    lake = loaded.config.stores["lake"]
    assert isinstance(lake, ParquetStoreConfig)
    assert lake.root == str(tmp_path / "lake")


def test_a_secret_in_an_invalid_config_is_not_repeated_in_the_error(tmp_path: Path) -> None:
    """The URL holds a password: a wrong type elsewhere must not print it."""
    config = CONFIG.replace(
        'url: "sqlite:///wh.db"', 'url: "postgresql://u:${PW}@db/x", timeout: soon'
    )
    found = problems(tmp_path, {"config.yaml": config}, {"PW": "hunter2"})
    assert all("hunter2" not in line for line in found)
    assert any("stores.warehouse.timeout" in line for line in found)


def test_a_missing_config_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path / "nope.yaml", {})
    assert (
        str(caught.value.problems[0])
        == f"{tmp_path}/nope.yaml: cannot read the file: No such file or directory"
    )


def test_a_check_file_past_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    """A 50 MB check file is one located problem naming its size; it is never read whole."""
    config = write(tmp_path, {"config.yaml": CONFIG, "checks/a.yaml": VIEW.format(name="users")})
    huge = tmp_path / "checks" / "huge.yaml"
    with huge.open("wb") as file:
        file.truncate(50 * 1024 * 1024)  # sparse: its size, without writing it
    with pytest.raises(ConfigError) as caught:
        load(config, {})
    assert [str(p) for p in caught.value.problems] == [
        f"{huge}: expected a file of at most 1048576 bytes, found 52428800 bytes; split it "
        "(a config's `checks` may name several files)"
    ]


def test_a_config_that_never_ends_is_refused_at_the_size_limit() -> None:
    """A device that reads forever (size 0 to stat) is refused after 1 MiB is read."""
    with pytest.raises(ConfigError) as caught:
        load(Path("/dev/zero"), {})
    assert [str(p) for p in caught.value.problems] == [
        "/dev/zero: expected a file of at most 1048576 bytes, found more than 1048576; split "
        "it (a config's `checks` may name several files)"
    ]


def test_a_soda_contract_file_past_the_size_limit_is_located_at_its_key(tmp_path: Path) -> None:
    """The size limit holds for a contract file named by a check, reported at that key."""
    view = VIEW.format(name="users").replace(
        "      - {kind: freshness, max: 1h}\n",
        "      - {kind: soda, contract_file: ../contracts/big.yaml}\n",
    )
    write(tmp_path, {"config.yaml": CONFIG, "checks/a.yaml": view})
    (tmp_path / "contracts").mkdir()
    with (tmp_path / "contracts" / "big.yaml").open("wb") as file:
        file.truncate(2 * 1024 * 1024)
    assert problems(tmp_path, {}) == [
        "checks/a.yaml:9: feature_views[0].checks[0].contract_file: cannot read "
        "checks/../contracts/big.yaml: expected a file of at most 1048576 bytes, found 2097152 "
        "bytes; split it (a config's `checks` may name several files)"
    ]


REDIS_CONFIG = """\
stores:
  cache: {type: redis, url: "redis://127.0.0.1:6379/0", layout: hash, key_template: "f:{feature_view}:{user}"}
  lake: {type: parquet, root: lake}
checks: checks/*.yaml
"""


def test_a_key_template_must_name_the_join_keys(tmp_path: Path) -> None:
    """A template naming `user` for a view keyed by `user_id` is caught at load time."""
    found = problems(
        tmp_path,
        {
            "config.yaml": REDIS_CONFIG,
            "checks/a.yaml": VIEW.format(name="u").replace("{store: online}", "{store: cache}"),
        },
    )
    assert found == [
        "checks/a.yaml:6: feature_views[0].online.store: expected the key template of 'cache' "
        "to name the join keys ['user_id'] (and optionally feature_view), found "
        "['feature_view', 'user'] in 'f:{feature_view}:{user}'"
    ]


def test_a_key_template_that_does_not_parse_is_located(tmp_path: Path) -> None:
    config = REDIS_CONFIG.replace('"f:{feature_view}:{user}"', '"f:{user_id"')
    found = problems(tmp_path, {"config.yaml": config})
    assert len(found) == 1
    assert found[0].startswith("config.yaml:2: stores.cache.key_template: expected a key template")


@pytest.mark.parametrize(
    "template", ["f:{user_id:>5}", "f:{user_id!r}", "f:{feature_view!s}:{user_id}"]
)
def test_a_key_template_with_a_format_spec_or_conversion_is_refused_at_load(
    tmp_path: Path, template: str
) -> None:
    """The store reads no key with a spec or conversion, so validate refuses it at its line."""
    config = REDIS_CONFIG.replace('"f:{feature_view}:{user}"', f'"{template}"')
    found = problems(tmp_path, {"config.yaml": config})
    assert len(found) == 1
    assert found[0].startswith("config.yaml:2: stores.cache.key_template: expected a key template")


def test_the_feast_layout_needs_a_project(tmp_path: Path) -> None:
    config = REDIS_CONFIG.replace(
        'layout: hash, key_template: "f:{feature_view}:{user}"', "layout: feast"
    )
    found = problems(tmp_path, {"config.yaml": config})
    assert found == ["config.yaml:2: stores.cache: expected `project` for layout feast, found none"]


def test_a_route_to_an_unknown_receiver_is_located(tmp_path: Path) -> None:
    config = CONFIG + (
        "receivers:\n"
        "  team: {type: file, path: alerts.jsonl}\n"
        "route:\n"
        "  receiver: team\n"
        "  routes:\n"
        "    - {receiver: oncall, match: {severity: P1}}\n"
    )
    found = problems(tmp_path, {"config.yaml": config, "checks/a.yaml": VIEW.format(name="u")})
    assert len(found) == 1
    assert found[0].startswith("config.yaml:11: route.routes[0].receiver:")
    assert "'oncall'" in found[0]


def test_a_listen_port_the_sidecar_cannot_bind_is_refused_at_load(tmp_path: Path) -> None:
    """`http.listen` with port 99999 is a located problem, not a crash when the daemon starts."""
    config = CONFIG + "http: {listen: '127.0.0.1:99999'}\n"
    assert problems(tmp_path, {"config.yaml": config, "checks/a.yaml": VIEW.format(name="u")}) == [
        "config.yaml:6: http.listen: expected host:port with a port from 0 to 65535, found "
        "'127.0.0.1:99999'"
    ]


MIXED = """\
feature_views:
  - name: users
    entity: user_id
    ttl: 1d
    features: {spend: float}
    online: {store: onlnie}
    checks:
      - {kind: freshness, max: 1h, qantile: p99}
      - {kind: null_rate, feature: spnd, max: 0.1}
  - name: broken
    entity: user_id
    ttl: forever
    features: {spend: float}
    checks:
      - {kind: null_rate, feature: nope, max: 0.1}
  - name: users
    entity: user_id
    ttl: 1d
    features: {spend: float}
    offline: {store: lake, path: u.parquet}
    checks:
      - {kind: freshness, max: 1h}
"""


def test_one_pass_reports_schema_and_cross_field_problems_of_a_file_together(
    tmp_path: Path,
) -> None:
    """A misspelled key does not hide a wrong store, an undeclared feature or a duplicate view
    name: each is located at its own line in the file as written (a view the schema refuses
    is left out of the rules across fields)."""
    found = problems(tmp_path, {"config.yaml": CONFIG, "checks/a.yaml": MIXED})
    found.sort(key=lambda p: int(p.split(":")[1]))
    assert found == [
        "checks/a.yaml:6: feature_views[0].online.store: expected one of the online stores "
        "['online'], found 'onlnie'",
        "checks/a.yaml:8: feature_views[0].checks[0].qantile: unknown key 'qantile' "
        "(did you mean 'quantile'?)",
        "checks/a.yaml:9: feature_views[0].checks[1].feature: expected a declared feature "
        "['spend'], found 'spnd'",
        found[3],  # the refused ttl: the duration parser's own words
        "checks/a.yaml:16: feature_views[2].name: expected a unique view name, found 'users' "
        "again (first at checks/a.yaml:2)",
    ]
    assert found[3].startswith("checks/a.yaml:12: feature_views[1].ttl: ")
