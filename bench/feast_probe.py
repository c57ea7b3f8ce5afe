"""Feast's side of the online probe benchmark: a Feast repository on the benchmark's private
Redis, and timed `get_online_features` calls against it.

Run by the interpreter of Feast's own virtualenv (never by featmon's), as

    python feast_probe.py apply SPEC.json   # write the repository, then `feast apply` in it
    python feast_probe.py read SPEC.json    # time get_online_features, write SPEC's `out`

SPEC names the repository directory, the Redis port, the project, the view (its name, join key
and features with their Feast types) and, for `read`, the entity ids, the warm-up and timed
runs, and the JSON file to write: Feast's version, the seconds of each timed call (only the
`get_online_features` call itself: not the import, the registry load or `to_dict`), and how
many of the entities the last call found. It imports only the standard library and Feast's
dependencies.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

FEATURES_PY = '''"""featmon's online probe benchmark: one feature view on user_id."""

from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.types import Bool, Float64, Int64, String

user = Entity(name="user", join_keys=["{join_key}"], value_type=ValueType.INT64)

source = FileSource(
    name="{view}_source",
    path="data/{view}.parquet",
    timestamp_field="event_timestamp",
)

{view} = FeatureView(
    name="{view}",
    entities=[user],
    ttl=timedelta(days=1),
    schema=[
{fields}
    ],
    online=True,
    source=source,
)
'''
FEAST_TYPES = {"double": "Float64", "int64": "Int64", "string": "String", "bool": "Bool"}


def write_repo(spec: dict[str, Any], repo: Path) -> None:
    """feature_store.yaml on the private Redis, features.py, and a one-row Parquet source."""
    import pandas as pd  # type: ignore[import-untyped, import-not-found, unused-ignore]  # noqa: PLC0415 - Feast's venv only

    view = spec["view"]
    lines = [
        f"project: {spec['project']}",
        "provider: local",
        "registry: data/registry.db",
        "online_store:",
        "    type: redis",
        f'    connection_string: "127.0.0.1:{spec["port"]}"',
        "offline_store:",
        "    type: file",
        "entity_key_serialization_version: 3",
    ]
    (repo / "data").mkdir(parents=True, exist_ok=True)
    (repo / "feature_store.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    fields = "\n".join(
        f'        Field(name="{name}", dtype={FEAST_TYPES[dtype]}),'
        for name, dtype in view["features"].items()
    )
    text = FEATURES_PY.format(join_key=view["join_key"], view=view["name"], fields=fields)
    (repo / "features.py").write_text(text, encoding="utf-8")
    row: dict[str, object] = {view["join_key"]: 1, "event_timestamp": pd.Timestamp.now("UTC")}
    samples = {"double": 1.0, "int64": 1, "string": "a", "bool": True}
    row.update({name: samples[dtype] for name, dtype in view["features"].items()})
    pd.DataFrame([row]).to_parquet(repo / "data" / f"{view['name']}.parquet", index=False)


def apply(spec: dict[str, Any]) -> None:
    """Writes the repository and runs Feast's `feast apply` command line in it."""
    repo = Path(spec["repo"])
    write_repo(spec, repo)
    feast = Path(sys.executable).with_name("feast")
    done = subprocess.run(  # noqa: S603 - the venv's own feast command
        [str(feast), "apply"], cwd=repo, capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"feast apply failed:\n{done.stdout}\n{done.stderr}")


def read(spec: dict[str, Any]) -> dict[str, Any]:
    """Warm-up and timed `get_online_features` calls, each for every entity in one call."""
    from feast import FeatureStore, __version__  # type: ignore[import-not-found, unused-ignore]  # noqa: PLC0415 - Feast's venv only

    view = spec["view"]
    store = FeatureStore(repo_path=spec["repo"])
    refs = [f"{view['name']}:{name}" for name in view["features"]]
    rows = [{view["join_key"]: user_id} for user_id in spec["ids"]]
    seconds: list[float] = []
    response = None
    for run in range(spec["warmup"] + spec["repeat"]):
        started = time.perf_counter()
        response = store.get_online_features(features=refs, entity_rows=rows)
        elapsed = time.perf_counter() - started
        if run >= spec["warmup"]:
            seconds.append(elapsed)
    columns = response.to_dict() if response is not None else {}
    probe = spec["found_feature"]
    found = sum(1 for value in columns.get(probe, []) if value is not None)
    return {"feast_version": __version__, "seconds": seconds, "found": found}


def main(command: str, spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    if command == "apply":
        apply(spec)
    elif command == "read":
        result = read(spec)
        Path(spec["out"]).write_text(json.dumps(result), encoding="utf-8")
    else:
        raise SystemExit(f"expected `apply` or `read`, found {command!r}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
