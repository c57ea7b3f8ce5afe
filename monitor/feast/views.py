"""Feast feature views as featmon feature views, for `featmon init --from-feast`.

A view's entry of its check file comes from the registry (`monitor.feast.registry`): its join
keys and their types, the features featmon can read and their types, the TTL, the batch source
(an `offline` entry when featmon reads it: a local Parquet file, a PostgreSQL table, no renamed
columns) and the materialization history, which suggest the default checks (see
`freshness_bounds`) and `materialized_every`. Entries name the generated stores
`ONLINE_STORE` and `OFFLINE_STORE`; a view featmon cannot monitor (no entity, no readable
feature, neither online nor readable offline) gets no entry, only a note.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from checks.duration import format_duration
from monitor.feast.models import DeclaredView
from monitor.feast.registry import (
    COLLECTION_DTYPES,
    KEY_DTYPES,
    SCALAR_DTYPES,
    Entity,
    FeatureView,
)

ONLINE_STORE = "feast_online"
OFFLINE_STORE = "feast_offline"

NO_TTL = timedelta(days=30)
"""The max age featmon uses for a view whose Feast TTL is zero (values never expire)."""
DUMMY_ENTITY = "__dummy"


@dataclass(frozen=True)
class Naming:
    """What every view's document refers to: the project, the stores, the entities."""

    project: str
    offline_kind: str | None  # "parquet", "sql", or None: no offline store
    versioned_tables: bool
    entities: Mapping[str, Entity]


@dataclass(frozen=True)
class GeneratedView:
    """One view's entry of its check file (None when it cannot be monitored), the comment that
    explains it, notes for the user, and the view as declared (for the models over it)."""

    name: str
    document: dict[str, Any] | None
    comments: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    uses_offline: bool = False
    declared: DeclaredView | None = None  # what a model of it may reference


@dataclass(frozen=True)
class Bounds:
    """Freshness thresholds suggested for a view, and why."""

    ttl: timedelta
    warn: timedelta
    max: timedelta
    reason: str


def freshness_bounds(ttl: timedelta, every: timedelta | None) -> Bounds:
    """Feast serves no value older than the TTL, so p99 beyond it means more than 1% of requests
    get nothing: max = TTL. warn = two materialization periods (one run missed) when that is
    under the TTL, else half the TTL. A view without TTL gets NO_TTL (or 4 periods)."""
    if ttl <= timedelta(0):
        limit = max(NO_TTL, 4 * every) if every else NO_TTL
        reason = (
            f"Feast TTL 0 (values never expire): featmon needs a max age, "
            f"{format_duration(limit)} is a starting point"
        )
    else:
        limit = ttl
        reason = f"Feast serves no value older than the TTL ({format_duration(ttl)}): max = TTL"
    if every is not None and 2 * every < limit:
        return Bounds(limit, 2 * every, limit, f"{reason}; warn = 2 materialization periods")
    return Bounds(limit, limit / 2, limit, f"{reason}; warn = half of it")


def _join_keys(view: FeatureView, naming: Naming) -> tuple[list[str], dict[str, str]]:
    """The join keys of the view's entities, and the dtypes Feast gave them."""
    columns = {column.name: column.value_type for column in view.entity_columns}
    keys: list[str] = []
    types: dict[str, str] = {}
    for name in view.entities:
        entity = naming.entities.get(name)
        key = entity.join_key if entity is not None and entity.join_key else name
        keys.append(key)
        dtype = KEY_DTYPES.get(columns.get(key) or (entity.value_type if entity else 0))
        if dtype is not None:
            types[key] = dtype
    return keys, types


def _features(view: FeatureView) -> tuple[dict[str, str], list[str], bool]:
    """Declared features, notes on those left out, and whether any is a list or set."""
    features: dict[str, str] = {}
    notes: list[str] = []
    collections = False
    for feature in view.features:
        dtype = SCALAR_DTYPES.get(feature.value_type)
        if dtype is None and feature.value_type in COLLECTION_DTYPES:
            dtype, collections = COLLECTION_DTYPES[feature.value_type], True
        if dtype is None:
            notes.append(f"feature {feature.name!r} ({feature.type_name}) is not monitored")
            continue
        features[feature.name] = dtype
    return features, notes, collections


def _offline_source(view: FeatureView, naming: Naming) -> tuple[dict[str, Any] | None, str]:
    """The view's `offline` entry, or None and why not."""
    source = view.batch_source
    if source is None or naming.offline_kind is None:
        return None, "no batch source featmon can read"
    if source.field_mapping:
        return None, "its batch source renames columns (field_mapping)"
    entry: dict[str, Any] = {"store": OFFLINE_STORE}
    if source.kind == "BATCH_FILE" and naming.offline_kind == "parquet" and source.path:
        if "://" in source.path and not source.path.startswith("file://"):
            return None, f"its Parquet source {source.path!r} is not a local file"
        entry["path"] = source.path.removeprefix("file://")
    elif source.kind == "POSTGRES" and naming.offline_kind == "sql" and source.table:
        entry["table"] = source.table
    else:
        return None, f"its {source.kind.lower()} batch source is not read by featmon"
    if source.created_timestamp_column:
        entry["ingested_at"] = source.created_timestamp_column
    return entry, ""


def _checks(online: bool, offline: bool, bounds: Bounds, strict_offline: bool) -> list[Any]:
    checks: list[dict[str, Any]] = []
    warn, limit = format_duration(bounds.warn), format_duration(bounds.max)
    if online:
        checks += [
            {"kind": "freshness", "quantile": "p99", "warn": warn, "max": limit, "severity": "P1"},
            {"kind": "coverage", "min": 0.95, "severity": "P1"},
            {"kind": "null_rate", "target": "online", "max": 0.01, "severity": "P2"},
            {"kind": "schema_drift", "target": "online", "severity": "P2"},
        ]
    if offline:
        checks.append({"kind": "freshness", "target": "offline", "max": limit, "severity": "P2"})
        if not online:
            checks.append({"kind": "null_rate", "target": "offline", "max": 0.01, "severity": "P2"})
        if strict_offline:
            checks.append(
                {"kind": "schema_drift", "target": "offline", "allow_added": True, "severity": "P3"}
            )
    return checks


def view_document(view: FeatureView, naming: Naming) -> GeneratedView:
    """The check-file entry of one Feast feature view."""
    if view.entities in ((), (DUMMY_ENTITY,)):
        return GeneratedView(view.name, None, notes=(f"view {view.name!r} has no entity: skipped",))
    features, notes, collections = _features(view)
    if not features:
        return GeneratedView(
            view.name, None, notes=(f"view {view.name!r}: no feature featmon can read",)
        )
    keys, key_types = _join_keys(view, naming)
    offline, why_not = _offline_source(view, naming)
    bounds = freshness_bounds(view.ttl, view.materialization_period)
    document: dict[str, Any] = {
        "name": view.name,
        "entity": keys[0] if len(keys) == 1 else keys,
        "entity_types": key_types,
        "ttl": format_duration(bounds.ttl),
        "timestamp": (view.batch_source.timestamp_field if view.batch_source else "")
        or "event_timestamp",
        "features": features,
    }
    period = view.materialization_period
    if period is not None:
        document["materialized_every"] = format_duration(period)
    if view.online:
        document["online"] = _online_entry(view, naming, offline is not None)
    if offline is not None:
        document["offline"] = offline
    if not view.online and offline is None:
        return GeneratedView(
            view.name, None, notes=(f"view {view.name!r} is not online and {why_not}: skipped",)
        )
    document["labels"] = {"feast_project": naming.project, **dict(view.tags)}
    document["checks"] = _checks(view.online, offline is not None, bounds, not collections)
    if len(notes) and view.online:  # stored but undeclared: not counted as drift
        document["checks"][3]["allow_added"] = True
    comments = _view_comments(view, bounds, offline is not None, why_not, notes, collections)
    return GeneratedView(
        view.name,
        document,
        tuple(comments),
        tuple(f"view {view.name!r}: {n}" for n in notes),
        offline is not None,
        DeclaredView(view, features, bounds.ttl, period),
    )


def _online_entry(view: FeatureView, naming: Naming, has_offline: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"store": ONLINE_STORE}
    entry["population"] = "offline" if has_offline else "online"
    if has_offline:
        entry["lookback"] = "30d"
    if naming.versioned_tables and view.version > 0:
        entry["table"] = f"{naming.project}_{view.name}_v{view.version}"
    return entry


def _view_comments(
    view: FeatureView,
    bounds: Bounds,
    offline: bool,
    why_not: str,
    notes: list[str],
    collections: bool,
) -> list[str]:
    source = view.batch_source
    where = (source.path or source.table or source.query or source.name) if source else "none"
    ends = [end for _, end in view.materialized if end is not None]
    lines = [
        f"Feature view {view.name!r}: entities {', '.join(view.entities)}; "
        f"{len(view.features)} features; TTL {format_duration(view.ttl)}; online {view.online}.",
        f"Batch source: {source.kind.lower() if source else 'none'} {where}.",
        f"Materialized {len(ends)} times, last up to {max(ends):%Y-%m-%d %H:%M} UTC."
        if ends
        else "Never materialized.",
        f"Freshness: {bounds.reason}.",
        "Coverage samples the entity ids of the batch source seen within 30 days."
        if offline
        else f"Coverage samples random online keys: {why_not}.",
    ]
    if collections:
        lines.append("List and set features are declared as their element type.")
    lines += [f"Not monitored: {note}." for note in notes]
    lines.append("These thresholds are starting points: tune them to the pipeline.")
    return lines
