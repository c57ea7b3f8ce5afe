"""Feast feature services as featmon models, for `featmon init --from-feast`.

A feature service is what a model is served: a projection of each of its views (every feature,
or some). Its model names the features as `view:feature`, or `view` when the projection takes the
whole view, and carries the service's owner and tags. The default checks: coverage of at least
0.95 (P1), the p99 age of served values no older than the smallest TTL of its views (P2), a null
rate of at most 0.01 per feature (P2), and, when a view's materialization period is known from
the registry (`materialized_every`), the freshness risk it predicts (P2, a warning).

A model is checked over its requests, so it needs one source of them. A service whose logging
config writes Parquet files featmon can read (Feast's file destination, a local directory) gets a
live model over that serving log: on the Parquet store rooted at the repository when the
directory lies below it (a relative path is relative to the repository, where Feast's file
offline store writes it), otherwise on a Parquet store of its own rooted at the directory. Any
other service (no logging config, a remote directory, a warehouse table) gets its model commented
out, as a hint in the check file of its first view that says how to give it a sample of recent
requests, and a note. Services whose projections rename a view, map its join keys or pin a
version are left out with a note: a featmon model names views, their join keys and their
serving-log columns by the views' own names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from checks.duration import format_duration
from checks.served import NAME_PATTERN
from monitor.feast.registry import FeatureService, FeatureView, LoggingDestination, Projection
from monitor.feast.repo import beside, relative_to_out

COVERAGE_MIN = 0.95
NULL_RATE_MAX = 0.01
LOG_STORE_PREFIX = "feast_log_"


@dataclass(frozen=True)
class DeclaredView:
    """A view as its generated check file declares it: the Feast view, the features featmon
    reads of it (name -> dtype), the TTL featmon gave it and its `materialized_every`."""

    feast: FeatureView
    features: Mapping[str, str]
    ttl: timedelta
    materialized_every: timedelta | None = None

    @property
    def file(self) -> str:
        return f"checks/{self.feast.name}.yaml"


@dataclass(frozen=True)
class LogStores:
    """Where serving logs are read from: the repository's root, the generated Parquet store
    rooted there (None without one), and the directory config.yaml is written to."""

    repo_root: Path
    parquet_store: str | None
    out: Path


@dataclass(frozen=True)
class GeneratedModel:
    """One service's model: its check-file entry (None: not live), the comments that explain
    it, the model commented out (`hint`) for the check file `hint_file` when no serving log
    featmon reads is known, the stores its serving log needs, and notes for the user."""

    name: str
    document: dict[str, Any] | None
    comments: tuple[str, ...] = ()
    hint: dict[str, Any] | None = None
    hint_file: str | None = None
    stores: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def file(self) -> str:
        return f"checks/{self.name}.model.yaml"


_Source = tuple[dict[str, Any], dict[str, dict[str, Any]]]  # serving_log, and its stores


def service_model(
    service: FeatureService, views: Mapping[str, DeclaredView], stores: LogStores, project: str
) -> GeneratedModel:
    """The model of one feature service: live over its serving log, commented out as a hint,
    or none (a note says why)."""
    if re.fullmatch(NAME_PATTERN, service.name) is None:
        return _skipped(service, f"its name does not match {NAME_PATTERN}")
    projected = _projected(service, views)
    if isinstance(projected, str):
        return _skipped(service, projected)
    references, used, notes = projected
    document: dict[str, Any] = {"name": service.name, "features": references}
    if service.owner:
        document["owner"] = service.owner
    document["labels"] = {"feast_project": project, **dict(service.tags)}
    checks = _checks(used)
    source = _serving_log(service.name, service.logging, stores)
    if isinstance(source, str):
        hint = document | {"requests": {"ids_file": f"{service.name}_requests.csv"}}
        note = (
            f"feature service {service.name!r}: {source}: its model is commented out in "
            f"{used[0].file}; give it a sample of recent requests to check it"
        )
        comments = _hint_comments(service, used, source)
        hint |= {"checks": checks}
        return GeneratedModel(service.name, None, comments, hint, used[0].file, {}, (*notes, note))
    log, log_stores = source
    document |= {"serving_log": log, "checks": checks}
    comments = _comments(service, used)
    return GeneratedModel(service.name, document, comments, stores=log_stores, notes=notes)


def _projected(
    service: FeatureService, views: Mapping[str, DeclaredView]
) -> tuple[list[str], list[DeclaredView], tuple[str, ...]] | str:
    """The service's feature references, its views and notes on the features left out; or
    why no model can express it."""
    references: list[str] = []
    used: list[DeclaredView] = []
    notes: list[str] = []
    for projection in service.projections:
        view = views.get(projection.view)
        why_not = _unexpressed(projection)
        if why_not is not None or view is None:
            return why_not or f"its view {projection.view!r} is not monitored"
        taken, left_out = _references(projection, view)
        references += taken
        used.append(view)
        notes += [f"feature service {service.name!r}: {ref} is not monitored" for ref in left_out]
    if not references:
        return "none of its features is monitored"
    return references, used, tuple(notes)


def _skipped(service: FeatureService, why: str) -> GeneratedModel:
    return GeneratedModel(
        service.name, None, notes=(f"feature service {service.name!r} is not modelled: {why}",)
    )


def _unexpressed(projection: Projection) -> str | None:
    """Why a featmon model cannot express the projection, or None."""
    if projection.log_name != projection.view:
        return (
            f"it serves the view {projection.view!r} as {projection.log_name!r} (with_name or "
            "a pinned version), the name its serving log's columns carry"
        )
    if projection.join_key_map:
        return f"it maps the join keys of {projection.view!r} (with_join_key_map)"
    return None


def _references(projection: Projection, view: DeclaredView) -> tuple[list[str], list[str]]:
    """The projection as one `view` reference (all of the view's features, each declared) or
    `view:feature` references; and the `view:feature` featmon does not read."""
    names = [feature.name for feature in projection.features]
    every = {feature.name for feature in view.feast.features}
    read = [name for name in names if name in view.features]
    left_out = [f"{projection.view}:{name}" for name in names if name not in view.features]
    if not left_out and set(names) == every:
        return [projection.view], []
    return [f"{projection.view}:{name}" for name in read], left_out


def _checks(views: list[DeclaredView]) -> list[dict[str, Any]]:
    """Coverage, freshness within the smallest TTL, null rates; and the freshness risk when a
    view's materialization period is known (its check file's `materialized_every`)."""
    checks: list[dict[str, Any]] = [
        {"kind": "coverage", "min": COVERAGE_MIN, "severity": "P1"},
        {
            "kind": "freshness",
            "quantile": "p99",
            "max": format_duration(min(view.ttl for view in views)),
            "severity": "P2",
        },
        {"kind": "null_rate", "max": NULL_RATE_MAX, "severity": "P2"},
    ]
    if any(view.materialized_every for view in views):
        checks.append({"kind": "freshness_risk", "severity": "P2"})
    return checks


def _serving_log(
    name: str, destination: LoggingDestination | None, stores: LogStores
) -> _Source | str:
    """The model's `serving_log` and the stores it needs besides the generated ones, or why
    featmon cannot read the service's log."""
    if destination is None:
        return "it has no logging_config"
    if destination.kind != "file" or not destination.path:
        where = destination.table or destination.kind
        return (
            f"it logs to the {destination.kind} destination {where!r}, which featmon does not read"
        )
    path = destination.path.removeprefix("file://")
    if "://" in path or destination.s3_endpoint_override:
        return f"it logs to {destination.path!r}, which is not a local directory"
    directory = beside(stores.repo_root, path).resolve()
    root = stores.repo_root.resolve()
    if stores.parquet_store is not None and directory.is_relative_to(root):
        return {"store": stores.parquet_store, "path": directory.relative_to(root).as_posix()}, {}
    store = LOG_STORE_PREFIX + name
    own = {"type": "parquet", "root": relative_to_out(directory, stores.out)}
    return {"store": store, "path": "."}, {store: own}


def _comments(service: FeatureService, views: list[DeclaredView]) -> tuple[str, ...]:
    destination = service.logging
    lines = _about(service, views)
    if destination is not None:
        lines.append(
            f"Serving log: Feast's file destination {destination.path!r} (a directory of "
            "Parquet files); each run judges the requests logged in the hour before it."
        )
        if 0 < destination.sample_rate < 1:
            lines.append(f"Feast logs {destination.sample_rate:.0%} of the requests.")
        if destination.partition_by:
            lines.append(
                f"Partitioned by {', '.join(destination.partition_by)}: Feast keeps those "
                "columns in the directory names, not in the files."
            )
    ttls = ", ".join(f"{v.feast.name} {format_duration(v.ttl)}" for v in views)
    lines += [
        f"Coverage: every feature present, non-null and no older than its view's TTL ({ttls}).",
        "Freshness: the p99 age of the served values, at most the smallest TTL.",
    ]
    if any(view.materialized_every for view in views):
        lines.append(
            "Freshness risk: warns when a view's values are predicted to outgrow its TTL "
            "between materializations (its materialized_every)."
        )
    lines.append("These thresholds are starting points: tune them to the model.")
    return tuple(lines)


def _hint_comments(service: FeatureService, views: list[DeclaredView], why: str) -> tuple[str, ...]:
    keys = list(dict.fromkeys(column.name for v in views for column in v.feast.entity_columns))
    return (
        *_about(service, views),
        f"Not checked: {why}.",
        "A model is checked over its requests: its serving log (Feast's logging_config with a",
        "file destination), or a sample of recent requests read from the online stores now, one",
        f"column per join key ({', '.join(keys)}), from a SQL `query` on an offline store or an",
        "`ids_file` (a CSV file with a header). To check it, uncomment the model below, point",
        "`requests` at recent requests, and run `featmon validate`.",
    )


def _about(service: FeatureService, views: list[DeclaredView]) -> list[str]:
    owner = f"; owner {service.owner}" if service.owner else ""
    lines = [
        f"Feature service {service.name!r}: views {', '.join(v.feast.name for v in views)}{owner}."
    ]
    if service.description:
        lines.append(f"Feast: {service.description}")
    return lines
