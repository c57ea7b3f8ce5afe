"""`featmon list`: what a configuration holds (stores, feature views and models with their
schedules and next run times, checks), without connecting to anything."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from checks.duration import format_duration
from checks.schedule import Schedule
from monitor.daemon.scheduler import ScheduleError, job_key, next_time
from monitor.loader import Loaded, LoadedModel


def describe(loaded: Loaded, now: datetime) -> dict[str, object]:
    """The configuration as data: stores, views, models and checks (the JSON of `featmon
    list`)."""
    return {
        "config": str(loaded.path),
        "stores": [
            {"name": name, "type": store.type} for name, store in loaded.config.stores.items()
        ],
        "feature_views": [
            {
                "name": v.view.name,
                "file": f"{v.file}:{v.line}",
                "online": None if v.view.online is None else v.view.online.store,
                "offline": None if v.view.offline is None else v.view.offline.store,
                "schedule": schedule_text(v.view.schedule),
                "next_run": _next_run(v.view.name, v.view.schedule, now),
                "checks": len(v.planned),
            }
            for v in loaded.views
        ],
        "models": [_model(m, now) for m in loaded.models],
        "checks": [
            {
                "id": p.id,
                "kind": p.kind,
                "feature_view": p.view.name,
                "target": p.target,
                "store": p.store,
                "severity": p.check.severity,
            }
            for p in loaded.planned
        ]
        + [
            {
                "id": p.id,
                "kind": p.kind,
                "model": m.name,
                "target": m.served.model.source,
                "store": _model_store(m),
                "severity": p.check.severity,
            }
            for m in loaded.models
            for p in m.planned
        ],
    }


def _model(model: LoadedModel, now: datetime) -> dict[str, object]:
    """One model: where its requests are seen (`serving_log` or `requests`, and the store),
    its schedule and next run, its checks."""
    schedule = model.served.model.schedule
    return {
        "name": model.name,
        "file": f"{model.file}:{model.line}",
        "source": model.served.model.source,
        "store": _model_store(model),
        "schedule": schedule_text(schedule),
        "next_run": _next_run(model.key, schedule, now),
        "checks": len(model.planned),
    }


def _model_store(model: LoadedModel) -> str | None:
    """The offline store of its serving log or request query (None: a file of requests)."""
    source = model.served.model.serving_log or model.served.model.requests
    return None if source is None else source.store


def schedule_text(schedule: Schedule) -> str:
    """`every 5m`, or `cron */10 * * * * (Europe/Berlin)`, with `, jitter 30s` when set."""
    if schedule.cron is not None:
        zone = "" if schedule.timezone == "UTC" else f" ({schedule.timezone})"
        text = f"cron {schedule.cron}{zone}"
    else:
        every = schedule.every
        text = "every ?" if every is None else f"every {format_duration(every)}"
    if schedule.jitter:
        text += f", jitter {format_duration(schedule.jitter)}"
    return text


def _next_run(subject: str, schedule: Schedule, now: datetime) -> str | None:
    """When the daemon runs the view or model (`subject`) next: its grid is its job key's."""
    try:
        found = next_time(schedule, now, job_key(subject))
    except ScheduleError:
        return None
    return None if found is None else f"{found:%Y-%m-%dT%H:%M:%S}Z"


def table(doc: dict[str, object]) -> str:
    """The text of `featmon list`: four aligned tables."""
    sections = [
        ("STORE", "TYPE"),
        ("FEATURE VIEW", "ONLINE", "OFFLINE", "SCHEDULE", "NEXT RUN (UTC)", "CHECKS", "FILE"),
        ("MODEL", "SOURCE", "STORE", "SCHEDULE", "NEXT RUN (UTC)", "CHECKS", "FILE"),
        ("CHECK", "KIND", "TARGET", "STORE", "SEV"),
    ]
    keys = [
        ("name", "type"),
        ("name", "online", "offline", "schedule", "next_run", "checks", "file"),
        ("name", "source", "store", "schedule", "next_run", "checks", "file"),
        ("id", "kind", "target", "store", "severity"),
    ]
    out: list[str] = []
    tables = [
        cast("list[dict[str, object]]", doc[k])
        for k in ("stores", "feature_views", "models", "checks")
    ]
    for header, fields, items in zip(sections, keys, tables, strict=True):  # describe() builds them
        rows = [header, *[tuple(_cell(item.get(f)) for f in fields) for item in items]]
        out.extend(_aligned(rows))
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _cell(value: object) -> str:
    return "—" if value is None else str(value)


def _aligned(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
