"""Feast's serving logs, written by Feast itself from what it served (Feast's virtualenv only).

In the pip package only the Go feature server logs requests while serving; Python code serves
with `get_online_features` and writes a table of the logging schema with
`FeatureStore.write_logged_features`. `log_table` builds that table from `OnlineResponse.proto`:
for every feature its value, its event time (whole seconds, as Feast keeps them) and its
FieldStatus, as the schema that `FeatureServiceLoggingSource.get_schema` declares for the
service (join keys first of each view, then the system columns `__log_timestamp`,
`__log_date`, `__request_id`). `read_back` reads the Parquet files Feast wrote with pyarrow.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any


def at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def log_table(store: Any, service: Any, rows: list[dict[str, Any]], log_time: int) -> Any:  # noqa: ANN401 - Feast's and pyarrow's objects, untyped here
    """One batch of requests (entity rows) served now through the feature service, as the table
    Feast's logging source declares for it; the i-th request logged `i` seconds after
    `log_time` (epoch seconds)."""
    import pyarrow as pa  # type: ignore[import-untyped, import-not-found, unused-ignore]  # noqa: PLC0415 - Feast's venv only
    from feast.feature_logging import (  # type: ignore[import-not-found, unused-ignore]  # noqa: PLC0415 - Feast's venv only
        LOG_DATE_FIELD,
        LOG_TIMESTAMP_FIELD,
        REQUEST_ID_FIELD,
        FeatureServiceLoggingSource,
    )
    from feast.type_map import feast_value_type_to_python_type  # type: ignore[import-not-found, unused-ignore]  # noqa: PLC0415 - Feast's venv only

    schema = FeatureServiceLoggingSource(service, store.project).get_schema(store.registry)
    response = store.get_online_features(
        features=service, entity_rows=rows, full_feature_names=True
    )
    proto = response.proto
    columns: dict[str, list[Any]] = {}
    for name, vector in zip(proto.metadata.feature_names.val, proto.results, strict=True):
        if f"{name}__status" not in schema.names:
            continue  # a join key: logged as requested, below
        columns[name] = [feast_value_type_to_python_type(v) for v in vector.values]
        columns[f"{name}__timestamp"] = [at(t.seconds) for t in vector.event_timestamps]
        columns[f"{name}__status"] = [int(s) for s in vector.statuses]
    logged = [at(log_time + i) for i in range(len(rows))]
    columns[LOG_TIMESTAMP_FIELD] = logged
    columns[LOG_DATE_FIELD] = [moment.date() for moment in logged]
    columns[REQUEST_ID_FIELD] = [uuid.uuid4().hex for _ in rows]
    for key in rows[0]:
        columns[key] = [row[key] for row in rows]
    missing = set(schema.names) - set(columns)
    if missing:
        raise RuntimeError(f"Feast's log schema has columns no response filled: {missing}")
    return pa.table({name: columns[name] for name in schema.names}, schema=schema)


def plain(value: object) -> object:
    """A logged value as JSON: times in epoch microseconds, dates as text."""
    if isinstance(value, datetime):
        return int(value.timestamp() * 1_000_000) if value.tzinfo else None
    if isinstance(value, date):
        return value.isoformat()
    return value


def read_back(log_dir: Path) -> dict[str, Any]:
    """The Parquet files Feast wrote, read with pyarrow: schema, file names and rows."""
    import pyarrow.parquet as pq  # type: ignore[import-untyped, import-not-found, unused-ignore]  # noqa: PLC0415 - Feast's venv only

    files = sorted(log_dir.rglob("*.parquet"))
    tables = [pq.read_table(path) for path in files]
    schema = tables[0].schema
    rows = [
        {name: plain(value) for name, value in row.items()}
        for table in tables
        for row in table.to_pylist()
    ]
    return {
        "schema": {field.name: str(field.type) for field in schema},
        "files": [path.relative_to(log_dir).as_posix() for path in files],
        "rows": rows,
    }
