"""Serve a model with Feast and log its requests as Feast does: a replay of a few hours.

Run by the interpreter of Feast's own virtualenv (never by featmon's), as

    python -m tests.integration.feast_serve SPEC.json   (from featmon's repository root)

SPEC names the project, the repository directory, its online store section, the rows of each
feature view (written here as Parquet) and the replay: a first materialization of the history,
then steps, each materializing one hour and serving a batch of requests (entity rows) through the
feature service `fraud_v1` with `get_online_features`, as of the step's log time. Feast can only
read the online store as it is now, so the store is replayed hour by hour and every batch is
served right after its hour is materialized: no value is newer than its request.

Each batch becomes a table in the schema Feast's logging source declares for the service
(`FeatureServiceLoggingSource.get_schema`: join keys; per feature its value, `__timestamp` and
`__status`; `__log_timestamp`, `__log_date`, `__request_id`), built from `OnlineResponse.proto`
(values, per-value event times, statuses), and is written with
`FeatureStore.write_logged_features`, so the Parquet files are Feast's own. The files are then
read back with pyarrow and written to SPEC's `out` as JSON (schema, files and rows, times in
epoch microseconds), with Feast's version and the timings.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from tests.integration.feast_build import feast_apply, materialize
from tests.integration.feast_logging import at, log_table, read_back

SERVICE = "fraud_v1"
LOG_PATH = "data/logs/fraud_v1"

FEATURES_PY = '''"""featmon's serving-log test repository: three views and two feature services."""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.feature_logging import LoggingConfig
from feast.infra.offline_stores.file_source import FileLoggingDestination
from feast.types import Bool, Float32, Float64, Int64, String

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
merchant = Entity(name="merchant", join_keys=["merchant_id"], value_type=ValueType.STRING)


def source(view):
    return FileSource(
        name=f"{{view}}_source", path=f"data/{{view}}.parquet", timestamp_field="event_timestamp"
    )


user_stats = FeatureView(
    name="user_stats",
    entities=[user],
    ttl=timedelta(days=1),
    schema=[
        Field(name="revenue", dtype=Float64),
        Field(name="orders", dtype=Int64),
        Field(name="segment", dtype=String),
    ],
    source=source("user_stats"),
)
merchant_stats = FeatureView(
    name="merchant_stats",
    entities=[merchant],
    ttl=timedelta(hours=2),
    schema=[Field(name="avg_ticket", dtype=Float32), Field(name="is_high_risk", dtype=Bool)],
    source=source("merchant_stats"),
)
user_merchant = FeatureView(
    name="user_merchant",
    entities=[user, merchant],
    ttl=timedelta(days=1),
    schema=[Field(name="txn_count_7d", dtype=Int64), Field(name="amount_sum_7d", dtype=Float64)],
    source=source("user_merchant"),
)

fraud_v1 = FeatureService(
    name="{service}",
    features=[user_stats[["revenue", "orders"]], merchant_stats, user_merchant],
    owner="risk@example.com",
    tags={{"team": "risk"}},
    logging_config=LoggingConfig(destination=FileLoggingDestination(path="{log_path}")),
)
merchant_shadow = FeatureService(name="merchant_shadow", features=[merchant_stats])
'''

TYPES = {
    "user_id": "int64",
    "merchant_id": "string",
    "revenue": "float64",
    "orders": "int64",
    "segment": "string",
    "avg_ticket": "float32",
    "is_high_risk": "bool",
    "txn_count_7d": "int64",
    "amount_sum_7d": "float64",
}


def write_repo(spec: dict[str, Any], repo: Path) -> None:
    """feature_store.yaml, features.py and one Parquet file per view (microsecond UTC times)."""
    import pandas as pd  # type: ignore[import-untyped, import-not-found, unused-ignore]  # noqa: PLC0415 - Feast's venv only

    lines = [
        f"project: {spec['project']}",
        "provider: local",
        "registry: data/registry.db",
        "online_store:",
        *(f"    {name}: {json.dumps(value)}" for name, value in spec["online_store"].items()),
        "offline_store:",
        "    type: file",
        "entity_key_serialization_version: 3",
    ]
    (repo / "data").mkdir(parents=True, exist_ok=True)
    (repo / "feature_store.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    text = FEATURES_PY.format(service=SERVICE, log_path=LOG_PATH)
    (repo / "features.py").write_text(text, encoding="utf-8")
    for view, rows in spec["rows"].items():
        frame = pd.DataFrame(rows)
        frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], unit="s", utc=True)
        frame = frame.astype({c: t for c, t in TYPES.items() if c in frame})
        frame.to_parquet(repo / "data" / f"{view}.parquet", index=False, coerce_timestamps="us")


def main(spec_path: str) -> None:
    from feast import FeatureStore, __version__  # type: ignore[import-not-found, unused-ignore]  # noqa: PLC0415 - Feast's venv only

    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    repo = Path(spec["repo"])
    timings: dict[str, float] = {}
    began = time.monotonic()
    write_repo(spec, repo)
    feast_apply(repo, command_line=False)
    materialize(repo, spec["history"])
    timings["apply and history"] = time.monotonic() - began
    store = FeatureStore(repo_path=str(repo))
    service = store.get_feature_service(SERVICE)
    for index, step in enumerate(spec["steps"], 1):
        began = time.monotonic()
        start, end = step["materialize"]
        store.materialize(start_date=at(start), end_date=at(end))
        table = log_table(store, service, step["requests"], step["log_time"])
        store.write_logged_features(table, service)
        timings[f"step {index}"] = time.monotonic() - began
    result = {"feast_version": __version__, "timings": timings, **read_back(repo / LOG_PATH)}
    Path(spec["out"]).write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1])
