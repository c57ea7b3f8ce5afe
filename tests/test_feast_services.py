"""Feast feature services: decoded from the registry (the real one Feast 0.67 wrote in the
integration suite, tests/integration/data/registry.db, and messages encoded here field by field
for the destinations it does not hold), and written by `featmon init` as models."""

from __future__ import annotations

import struct
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import yaml

from monitor.feast.init import init_from_feast
from monitor.feast.models import DeclaredView, LogStores, service_model
from monitor.feast.registry import (
    Feature,
    FeatureService,
    FeatureView,
    LoggingDestination,
    Projection,
    RegistryError,
    parse_registry,
    read_registry,
)
from monitor.feast.views import view_document
from monitor.feast.wire import encode_varint
from monitor.loader import load
from tests.test_feast_init import FIXTURE, NAMING, NOW, repo, synthetic

REVENUE, ORDERS, SEGMENT = Feature("revenue", 5), Feature("orders", 4), Feature("segment", 2)
TICKET, RISKY = Feature("avg_ticket", 6), Feature("is_high_risk", 7)


# --- decoding -----------------------------------------------------------------------------------


def test_the_real_registry_holds_the_three_feature_services() -> None:
    """fraud_v1 (two of user_stats' features, all of merchant_stats, owner, description, tags, a
    file destination sampling half the requests), growth_v1 (all of user_stats, no logging) and
    shop_v1 (merchant_stats renamed shop_stats)."""
    services = {s.name: s for s in read_registry(FIXTURE).services_of("featmon_it")}
    assert services["fraud_v1"] == FeatureService(
        name="fraud_v1",
        project="featmon_it",
        projections=(
            Projection("user_stats", (REVENUE, ORDERS)),
            Projection("merchant_stats", (TICKET, RISKY)),
        ),
        tags={"team": "risk"},
        owner="risk@example.com",
        description="Card fraud scoring",
        logging=LoggingDestination("file", 0.5, path="data/logs/fraud_v1"),
    )
    assert services["growth_v1"].projections == (
        Projection("user_stats", (REVENUE, ORDERS, SEGMENT)),
    )
    assert services["growth_v1"].logging is None
    (shop,) = services["shop_v1"].projections
    assert (shop.view, shop.alias, shop.log_name) == ("merchant_stats", "shop_stats", "shop_stats")


def key(number: int, wire: int) -> bytes:
    return encode_varint(number << 3 | wire)


def message(number: int, *parts: bytes) -> bytes:
    payload = b"".join(parts)
    return key(number, 2) + encode_varint(len(payload)) + payload


def text(number: int, value: str) -> bytes:
    return message(number, value.encode("utf-8"))


def entry(number: int, name: str, value: str) -> bytes:
    return message(number, text(1, name), text(2, value))


def registry_of(service: bytes) -> bytes:
    """A registry of one feature service (Registry field 7) of project p."""
    return message(7, message(1, text(1, "s"), text(2, "p"), service))


def logging_config(*destination: bytes, rate: float = 1.0) -> bytes:
    """FeatureServiceSpec.logging_config (7): sample_rate (1, a float) and destinations."""
    return message(7, key(1, 5) + struct.pack("<f", rate), *destination)


def decoded(service: bytes) -> FeatureService:
    (found,) = parse_registry(registry_of(service), "registry.db").services_of("p")
    return found


@pytest.mark.parametrize(
    ("destination", "expected"),
    [
        (
            message(4, text(1, "proj:ds.logs")),
            LoggingDestination("bigquery", 1.0, table="proj:ds.logs"),
        ),
        (message(5, text(1, "logs")), LoggingDestination("redshift", 1.0, table="logs")),
        (message(6, text(1, "LOGS")), LoggingDestination("snowflake", 1.0, table="LOGS")),
        (message(8, text(1, "logs")), LoggingDestination("athena", 1.0, table="logs")),
        (
            message(9, text(1, "db"), text(2, "scope"), text(3, "logs")),
            LoggingDestination("couchbase_columnar", 1.0, table="db.scope.logs"),
        ),
        (
            message(7, text(1, "my_sink"), entry(2, "table_name", "x")),
            LoggingDestination("my_sink", 1.0),
        ),
        (
            message(3, text(1, "s3://b/logs"), text(2, "http://minio:9000"), text(3, "__log_date")),
            LoggingDestination(
                "file",
                1.0,
                path="s3://b/logs",
                s3_endpoint_override="http://minio:9000",
                partition_by=("__log_date",),
            ),
        ),
    ],
    ids=["bigquery", "redshift", "snowflake", "athena", "couchbase", "custom", "file"],
)
def test_every_destination_of_a_logging_config_is_decoded(
    destination: bytes, expected: LoggingDestination
) -> None:
    """Files by path (with their endpoint and partition columns), warehouses by table, a custom
    destination by its kind."""
    assert decoded(logging_config(destination)).logging == expected


def test_the_destination_written_last_wins_as_in_a_oneof() -> None:
    """Protobuf keeps the last field of a oneof it reads; so does featmon."""
    config = logging_config(message(3, text(1, "a")), message(4, text(1, "t")), rate=0.25)
    assert decoded(config).logging == LoggingDestination("bigquery", 0.25, table="t")


def test_a_logging_config_without_destination_is_no_logging() -> None:
    assert decoded(logging_config()).logging is None


def test_a_projection_keeps_its_alias_join_key_map_and_version() -> None:
    """with_name, with_join_key_map and `view@v2` change the serving log's columns and keys."""
    projection = message(
        3,
        text(1, "user_stats"),
        message(2, text(1, "revenue"), key(2, 0) + encode_varint(5)),
        text(3, "buyer_stats"),
        entry(4, "user_id", "buyer_id"),
        key(10, 0) + encode_varint(2),
    )
    (found,) = decoded(projection).projections
    assert found == Projection(
        "user_stats", (REVENUE,), "buyer_stats", MappingProxyType({"user_id": "buyer_id"}), 2
    )
    assert found.log_name == "buyer_stats@v2"


def test_a_feature_service_without_a_spec_is_a_registry_error() -> None:
    with pytest.raises(RegistryError, match="a feature service without a spec"):
        parse_registry(message(7, text(2, "meta only")), "registry.db")


# --- models -------------------------------------------------------------------------------------

USERS = synthetic(
    name="user_stats", features=(REVENUE, ORDERS, Feature("tags", 20)), ttl=timedelta(days=1)
)
MERCHANTS = synthetic(name="merchant_stats", features=(TICKET, RISKY), ttl=timedelta(hours=2))


def declared(view: FeatureView, ttl: timedelta | None = None) -> DeclaredView:
    features = {f.name: "double" for f in view.features if f.value_type != 20}  # MAP: not read
    return DeclaredView(view, features, ttl or view.ttl)


VIEWS = {"user_stats": declared(USERS), "merchant_stats": declared(MERCHANTS)}
ROOT = Path("/srv/feature_repo")
STORES = LogStores(ROOT, "feast_offline", Path("/srv/teams/featmon"))


def service(*projections: Projection, **changes: Any) -> FeatureService:  # noqa: ANN401 - any FeatureService field
    base: dict[str, Any] = {"name": "fraud", "project": "p", "projections": projections, "tags": {}}
    return FeatureService(**(base | changes))


FILE = LoggingDestination("file", 1.0, path="data/logs/fraud")


def test_a_service_with_a_file_log_is_a_live_model_with_the_default_checks() -> None:
    """A whole view is named alone, a subset feature by feature; owner and tags become the
    owner and labels; the log below the repository is read through its Parquet store;
    freshness is held to the smallest TTL."""
    generated = service_model(
        service(
            Projection("merchant_stats", (TICKET, RISKY)),
            Projection("user_stats", (ORDERS,)),
            owner="risk@example.com",
            tags={"team": "risk"},
            logging=FILE,
        ),
        VIEWS,
        STORES,
        "p",
    )
    assert generated.document == {
        "name": "fraud",
        "features": ["merchant_stats", "user_stats:orders"],
        "owner": "risk@example.com",
        "labels": {"feast_project": "p", "team": "risk"},
        "serving_log": {"store": "feast_offline", "path": "data/logs/fraud"},
        "checks": [
            {"kind": "coverage", "min": 0.95, "severity": "P1"},
            {"kind": "freshness", "quantile": "p99", "max": "2h", "severity": "P2"},
            {"kind": "null_rate", "max": 0.01, "severity": "P2"},
        ],
    }
    assert (generated.stores, generated.notes, generated.hint) == ({}, (), None)


def test_features_featmon_does_not_read_are_left_out_with_a_note() -> None:
    """All of user_stats but its MAP feature: revenue and orders by name, and a note."""
    generated = service_model(
        service(Projection("user_stats", (REVENUE, ORDERS, Feature("tags", 20))), logging=FILE),
        VIEWS,
        STORES,
        "p",
    )
    assert generated.document is not None
    assert generated.document["features"] == ["user_stats:revenue", "user_stats:orders"]
    assert generated.notes == ("feature service 'fraud': user_stats:tags is not monitored",)


def test_a_known_materialization_period_is_declared_and_adds_the_freshness_risk() -> None:
    """Hourly materializations in the registry: the view declares `materialized_every: 1h`,
    and a model over it warns of the freshness risk."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    hourly = tuple((None, start + timedelta(hours=h)) for h in range(4))
    generated = view_document(synthetic(materialized=hourly), NAMING)
    assert generated.document is not None
    assert generated.document["materialized_every"] == "1h"
    assert generated.declared is not None
    assert generated.declared.materialized_every == timedelta(hours=1)
    views = {
        **VIEWS,
        "merchant_stats": replace(VIEWS["merchant_stats"], materialized_every=timedelta(hours=1)),
    }
    model = service_model(
        service(Projection("merchant_stats", (TICKET,)), logging=FILE), views, STORES, "p"
    )
    assert model.document is not None
    assert model.document["checks"][-1] == {"kind": "freshness_risk", "severity": "P2"}
    plain = service_model(
        service(Projection("merchant_stats", (TICKET,)), logging=FILE), VIEWS, STORES, "p"
    )
    assert plain.document is not None
    assert [c["kind"] for c in plain.document["checks"]] == ["coverage", "freshness", "null_rate"]


@pytest.mark.parametrize(
    ("path", "store", "root"),
    [
        ("/var/log/feast/fraud", "feast_log_fraud", "/var/log/feast/fraud"),
        ("../logs/fraud", "feast_log_fraud", "../../logs/fraud"),
        ("file:///srv/feature_repo/logs", "feast_offline", None),
    ],
    ids=["absolute-outside", "relative-outside", "file-url-inside"],
)
def test_a_log_outside_the_repository_gets_a_parquet_store_of_its_own(
    path: str, store: str, root: str | None
) -> None:
    """Relative to the repository as Feast resolves it; outside it, a store rooted at the
    directory (named relative to config.yaml when near it)."""
    logging = LoggingDestination("file", 1.0, path=path)
    generated = service_model(
        service(Projection("merchant_stats", (TICKET,)), logging=logging), VIEWS, STORES, "p"
    )
    assert generated.document is not None
    assert generated.document["serving_log"]["store"] == store
    if root is None:
        assert generated.document["serving_log"]["path"] == "logs"
        assert generated.stores == {}
    else:
        assert generated.document["serving_log"]["path"] == "."
        assert generated.stores == {store: {"type": "parquet", "root": root}}


@pytest.mark.parametrize(
    ("logging", "why"),
    [
        (None, "it has no logging_config"),
        (
            LoggingDestination("bigquery", 1.0, table="p:d.t"),
            "it logs to the bigquery destination 'p:d.t', which featmon does not read",
        ),
        (
            LoggingDestination("file", 1.0, path="s3://bucket/logs"),
            "it logs to 's3://bucket/logs', which is not a local directory",
        ),
    ],
    ids=["no-logging", "warehouse", "remote"],
)
def test_a_service_without_a_log_featmon_reads_is_a_hint(
    logging: LoggingDestination | None, why: str
) -> None:
    """No live model (a model needs a source of requests): the model with a request sample, to
    be uncommented in its first view's check file, and a note saying why."""
    generated = service_model(
        service(Projection("merchant_stats", (TICKET, RISKY)), logging=logging), VIEWS, STORES, "p"
    )
    assert generated.document is None
    assert generated.hint_file == "checks/merchant_stats.yaml"
    assert generated.hint is not None
    assert generated.hint["requests"] == {"ids_file": "fraud_requests.csv"}
    assert "serving_log" not in generated.hint
    assert f"Not checked: {why}." in generated.comments
    assert generated.notes == (
        f"feature service 'fraud': {why}: its model is commented out in "
        "checks/merchant_stats.yaml; give it a sample of recent requests to check it",
    )


@pytest.mark.parametrize(
    ("projection", "name", "why"),
    [
        (Projection("merchant_stats", (TICKET,), alias="shop"), "fraud", "as 'shop' (with_name"),
        (
            Projection("merchant_stats", (TICKET,), join_key_map={"merchant_id": "shop_id"}),
            "fraud",
            "maps the join keys",
        ),
        (
            Projection("merchant_stats", (TICKET,), version_tag=2),
            "fraud",
            "as 'merchant_stats@v2'",
        ),
        (Projection("returns", (TICKET,)), "fraud", "its view 'returns' is not monitored"),
        (Projection("merchant_stats", (TICKET,)), "fraud v2", "its name does not match"),
        (Projection("user_stats", (Feature("tags", 20),)), "fraud", "none of its features"),
    ],
    ids=["alias", "join-key-map", "version", "unknown-view", "bad-name", "no-feature"],
)
def test_services_a_model_cannot_express_are_left_out_with_a_note(
    projection: Projection, name: str, why: str
) -> None:
    generated = service_model(service(projection, name=name, logging=FILE), VIEWS, STORES, "p")
    assert (generated.document, generated.hint) == (None, None)
    (note,) = generated.notes
    assert note.startswith(f"feature service {name!r} is not modelled: ")
    assert why in note


# --- init on the real registry ------------------------------------------------------------------


def test_init_writes_fraud_v1_as_a_model_over_its_serving_log(tmp_path: Path) -> None:
    """fraud_v1's model file loads with the views; shop_v1 is a note; growth_v1 a hint."""
    out = tmp_path / "out"
    written = init_from_feast(repo(tmp_path), out, NOW)
    (model,) = yaml.safe_load((out / "checks" / "fraud_v1.model.yaml").read_text())["models"]
    assert model["features"] == ["user_stats:revenue", "user_stats:orders", "merchant_stats"]
    assert model["serving_log"] == {"store": "feast_offline", "path": "data/logs/fraud_v1"}
    text = (out / "checks" / "fraud_v1.model.yaml").read_text()
    assert "# Feast logs 50% of the requests." in text
    assert (
        "feature service 'shop_v1' is not modelled: it serves the view 'merchant_stats' as "
        "'shop_stats' (with_name or a pinned version), the name its serving log's columns carry"
    ) in written.notes
    (loaded,) = load(out / "config.yaml", {}).models
    assert loaded.served.references == (
        "user_stats:revenue",
        "user_stats:orders",
        "merchant_stats:avg_ticket",
        "merchant_stats:is_high_risk",
    )
    assert [p.id for p in loaded.planned][:2] == ["fraud_v1.coverage", "fraud_v1.freshness"]


def test_the_hint_loads_once_uncommented(tmp_path: Path) -> None:
    """growth_v1 is commented out in user_stats.yaml: uncommented, with its request sample
    written, the configuration loads with the model."""
    out = tmp_path / "out"
    init_from_feast(repo(tmp_path), out, NOW)
    path = out / "checks" / "user_stats.yaml"
    lines = path.read_text().splitlines()
    start = lines.index("# models:")
    path.write_text("\n".join([*lines[:start], *(line[2:] for line in lines[start:])]) + "\n")
    (out / "checks" / "growth_v1_requests.csv").write_text("user_id\n1\n2\n")
    models = {m.name: m for m in load(out / "config.yaml", {}).models}
    assert models["growth_v1"].served.model.requests is not None
    assert models["growth_v1"].served.references == (
        "user_stats:revenue",
        "user_stats:orders",
        "user_stats:segment",
    )
