"""`featmon list`: what a configuration holds (stores, feature views with their schedules and
next run times, checks), without connecting to anything."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from checks.duration import format_duration
from checks.schedule import Schedule
from monitor.daemon.scheduler import VIEW_KEY_PREFIX, ScheduleError, next_time
from monitor.loader import Loaded


def describe(loaded: Loaded, now: datetime) -> dict[str, object]:
    """The configuration as data: stores, views and checks (the JSON of `featmon list`)."""
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
        ],
    }


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


def _next_run(name: str, schedule: Schedule, now: datetime) -> str | None:
    try:
        found = next_time(schedule, now, VIEW_KEY_PREFIX + name)
    except ScheduleError:
        return None
    return None if found is None else f"{found:%Y-%m-%dT%H:%M:%S}Z"


def table(doc: dict[str, object]) -> str:
    """The text of `featmon list`: three aligned tables."""
    sections = [
        ("STORE", "TYPE"),
        ("FEATURE VIEW", "ONLINE", "OFFLINE", "SCHEDULE", "NEXT RUN (UTC)", "CHECKS", "FILE"),
        ("CHECK", "KIND", "TARGET", "STORE", "SEV"),
    ]
    keys = [
        ("name", "type"),
        ("name", "online", "offline", "schedule", "next_run", "checks", "file"),
        ("id", "kind", "target", "store", "severity"),
    ]
    out: list[str] = []
    tables = [
        cast("list[dict[str, object]]", doc[k]) for k in ("stores", "feature_views", "checks")
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
