"""Build the planted Feast repository once per online store, and materialize each.

Run by the interpreter of Feast's own virtualenv (never by featmon's), as

    python -m tests.integration.feast_build SPEC.json   (from featmon's repository root)

SPEC names the project, the rows of each feature view (written here as Parquet), the
materialization window, the entities to look up, and one build per online store: its repository
directory and the online store section of its feature_store.yaml. For each build the script does
what a Feast user does:

1. writes feature_store.yaml, data/*.parquet and features.py (with the feature `legacy_score`);
2. applies it (the first build with the `feast apply` command line, the others with the function
   behind it, in this process, which saves the command's start-up of about 8 s each), then
   materializes the window;
3. rewrites features.py without `legacy_score` (its rows stay in the online store as orphans),
   applies again and materializes the window again;
4. reads the lookups back with Feast's own `get_online_features`;
5. serves SPEC's `requests` through the feature service `fraud_v1` at SPEC's `log_time` and
   writes them to its serving log with `write_logged_features` (`feast_logging`).

features.py also declares the feature services `growth_v1` (all of user_stats, no logging) and
`shop_v1` (merchant_stats renamed `shop_stats`, with_name).

It writes Feast's version, the lookups and the timings of each build to SPEC's `out` as JSON.
It imports only the standard library and Feast's dependencies.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.integration.feast_logging import log_table

FEATURES_PY = '''"""featmon's integration test repository: {note}."""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.feature_logging import LoggingConfig
from feast.infra.offline_stores.file_source import FileLoggingDestination
from feast.types import Bool, Float32, Float64, Int64, String

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
merchant = Entity(name="merchant", join_keys=["merchant_id"], value_type=ValueType.STRING)

user_stats_source = FileSource(
    name="user_stats_source",
    path="data/user_stats.parquet",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)
merchant_stats_source = FileSource(
    name="merchant_stats_source",
    path="data/merchant_stats.parquet",
    timestamp_field="event_timestamp",
)

user_stats = FeatureView(
    name="user_stats",
    entities=[user],
    ttl=timedelta(days=1),
    schema=[
        Field(name="revenue", dtype=Float64),
        Field(name="orders", dtype=Int64),
        Field(name="segment", dtype=String),{legacy}
    ],
    online=True,
    source=user_stats_source,
    tags={{"team": "growth"}},
)

merchant_stats = FeatureView(
    name="merchant_stats",
    entities=[merchant],
    ttl=timedelta(hours=2),
    schema=[
        Field(name="avg_ticket", dtype=Float32),
        Field(name="is_high_risk", dtype=Bool),
    ],
    online=True,
    source=merchant_stats_source,
)

fraud_v1 = FeatureService(
    name="fraud_v1",
    features=[user_stats[["revenue", "orders"]], merchant_stats],
    owner="risk@example.com",
    description="Card fraud scoring",
    tags={{"team": "risk"}},
    logging_config=LoggingConfig(
        destination=FileLoggingDestination(path="data/logs/fraud_v1"), sample_rate=0.5
    ),
)
growth_v1 = FeatureService(name="growth_v1", features=[user_stats])
shop_v1 = FeatureService(name="shop_v1", features=[merchant_stats.with_name("shop_stats")])
'''
LEGACY = '\n        Field(name="legacy_score", dtype=Float64),'


def write_repo(project: str, online: dict[str, Any], repo: Path, legacy: bool) -> None:
    """feature_store.yaml and features.py, with or without `legacy_score`."""
    lines = [
        f"project: {project}",
        "provider: local",
        "registry: data/registry.db",
        "online_store:",
        *(f"    {name}: {json.dumps(value)}" for name, value in online.items()),
        "offline_store:",
        "    type: file",
        "entity_key_serialization_version: 3",
    ]
    (repo / "feature_store.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    note = "before legacy_score was removed" if legacy else "legacy_score removed"
    text = FEATURES_PY.format(note=note, legacy=LEGACY if legacy else "")
    (repo / "features.py").write_text(text, encoding="utf-8")


def write_data(spec: dict[str, Any], data: Path) -> None:
    """One Parquet file per view, with the columns' types made explicit and timestamps in
    microseconds; and user_stats again as pandas writes it by default (nanoseconds), which
    no view reads, for the test of that precision."""
    import pandas as pd  # type: ignore[import-untyped, import-not-found, unused-ignore]  # noqa: PLC0415 - Feast's venv only

    types = {
        "user_id": "int64",
        "orders": "int64",
        "revenue": "float64",
        "legacy_score": "float64",
        "segment": "string",
        "merchant_id": "string",
        "avg_ticket": "float32",
        "is_high_risk": "bool",
    }
    data.mkdir(parents=True, exist_ok=True)
    for view, rows in spec["rows"].items():
        frame = pd.DataFrame(rows)
        for column in ("event_timestamp", "created"):
            if column in frame:
                frame[column] = pd.to_datetime(frame[column], unit="s", utc=True)
        frame = frame.astype({c: t for c, t in types.items() if c in frame})
        frame.to_parquet(data / f"{view}.parquet", index=False, coerce_timestamps="us")
        if view == "user_stats":
            frame.to_parquet(data / "user_stats_ns.parquet", index=False)


def feast_apply(repo: Path, command_line: bool) -> None:
    """`feast apply` in the repository: its command line, or `apply_total`, the function behind
    it, in this process (features.py imported afresh from this repository each time)."""
    if not command_line:
        from feast.repo_config import load_repo_config  # type: ignore[import-not-found, unused-ignore]  # noqa: PLC0415 - Feast's venv only
        from feast.repo_operations import apply_total  # type: ignore[import-not-found, unused-ignore]  # noqa: PLC0415 - Feast's venv only

        sys.modules.pop("features", None)
        sys.path.insert(0, str(repo))  # as the command line does, to import features.py
        try:
            apply_total(load_repo_config(repo, repo / "feature_store.yaml"), repo, False)
        finally:
            sys.path.remove(str(repo))
        return
    feast = Path(sys.executable).with_name("feast")
    done = subprocess.run(
        [str(feast), "apply"], cwd=repo, capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"feast apply failed:\n{done.stdout}\n{done.stderr}")


def materialize(repo: Path, window: list[int]) -> None:
    from feast import FeatureStore  # type: ignore[import-not-found, unused-ignore]  # noqa: PLC0415 - Feast's venv only

    start, end = (datetime.fromtimestamp(t, UTC) for t in window)
    FeatureStore(repo_path=str(repo)).materialize(start_date=start, end_date=end)


def plain(value: object) -> object:
    """A value Feast returned, as JSON: NaN as null, numpy scalars as Python ones."""
    item = getattr(value, "item", None)
    if callable(item):
        value = item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def lookups(repo: Path, spec: dict[str, Any]) -> dict[str, list[dict[str, object]]]:
    """Feast's own online read of each view's lookup entities."""
    from feast import FeatureStore  # type: ignore[import-not-found, unused-ignore]  # noqa: PLC0415 - Feast's venv only

    store = FeatureStore(repo_path=str(repo))
    out: dict[str, list[dict[str, object]]] = {}
    for view, lookup in spec["lookups"].items():
        refs = [f"{view}:{feature}" for feature in lookup["features"]]
        rows = [{lookup["join_key"]: value} for value in lookup["keys"]]
        response = store.get_online_features(features=refs, entity_rows=rows).to_dict()
        out[view] = [
            {name: plain(values[i]) for name, values in response.items()} for i in range(len(rows))
        ]
    return out


def build(spec: dict[str, Any], target: dict[str, Any], first: bool) -> dict[str, Any]:
    """One repository, applied and materialized twice, and read back."""
    repo = Path(target["repo"])
    repo.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    started = time.monotonic()
    write_data(spec, repo / "data")
    for legacy in (True, False):
        step = "first" if legacy else "second"
        write_repo(spec["project"], target["online_store"], repo, legacy)
        began = time.monotonic()
        feast_apply(repo, command_line=legacy and first)
        timings[f"{step} apply"] = time.monotonic() - began
        began = time.monotonic()
        materialize(repo, spec["window"])
        timings[f"{step} materialize"] = time.monotonic() - began
    online = lookups(repo, spec)
    log_requests(repo, spec)
    return {"online": online, "timings": timings | {"total": time.monotonic() - started}}


def log_requests(repo: Path, spec: dict[str, Any]) -> None:
    """Serve SPEC's requests through fraud_v1 and write them to its serving log."""
    from feast import FeatureStore  # type: ignore[import-not-found, unused-ignore]  # noqa: PLC0415 - Feast's venv only

    store = FeatureStore(repo_path=str(repo))
    service = store.get_feature_service("fraud_v1")
    table = log_table(store, service, spec["requests"], spec["log_time"])
    store.write_logged_features(table, service)


def main(spec_path: str) -> None:
    from feast import __version__  # type: ignore[import-not-found, unused-ignore]  # noqa: PLC0415 - Feast's venv only

    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    builds = {
        name: build(spec, target, first=index == 0)
        for index, (name, target) in enumerate(spec["builds"].items())
    }
    result = {"feast_version": __version__, "builds": builds}
    Path(spec["out"]).write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1])
