"""JSON for the alerting values that outlive a process: `AlertEvent`, `Notification` (what the
outbox keeps until a receiver takes it) and `GroupState` (the grouper's memory between runs).

Pure: a value in, a JSON document out, and back. Times are ISO 8601 with their offset; a
document written by `*_to_json` reads back equal through `*_from_json`. Reading a document that
is not one raises `CodecError` (a `ValueError`) naming the field, never echoing its values.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from types import MappingProxyType

from alerts.model import AlertEvent, AlertState, Notification
from alerts.routing import Group, GroupState
from checks.result import JSON

JSONObject = dict[str, JSON]


class CodecError(ValueError):
    """A stored document is not the value it should hold."""

    def __init__(self, field: str, expected: str) -> None:
        self.field = field
        self.expected = expected
        super().__init__(f"{field}: expected {expected}")


# -- events ----------------------------------------------------------------------------------


def event_to_json(event: AlertEvent) -> JSONObject:
    return {
        "labels": dict(event.labels),
        "annotations": dict(event.annotations),
        "state": event.state.value,
        "starts_at": event.starts_at.isoformat(),
        "ends_at": _iso(event.ends_at),
        "severity": event.severity,
        "report_url": event.report_url,
    }


def event_from_json(data: JSON, where: str = "event") -> AlertEvent:
    doc = _object(data, where)
    state = _text(doc, "state", where)
    try:
        parsed = AlertState(state)
    except ValueError:
        raise CodecError(f"{where}.state", "pending, firing or resolved") from None
    return AlertEvent(
        labels=_texts(doc, "labels", where),
        annotations=_texts(doc, "annotations", where),
        state=parsed,
        starts_at=_time(doc, "starts_at", where),
        ends_at=_maybe_time(doc, "ends_at", where),
        severity=_text(doc, "severity", where),
        report_url=_maybe_text(doc, "report_url", where),
    )


# -- notifications ---------------------------------------------------------------------------


def notification_to_json(notification: Notification) -> JSONObject:
    return {
        "receiver": notification.receiver,
        "group_key": notification.group_key,
        "group_labels": dict(notification.group_labels),
        "alerts": [event_to_json(e) for e in notification.alerts],
        "created_at": notification.created_at.isoformat(),
        "external_url": notification.external_url,
        "common_labels": dict(notification.common_labels),
    }


def notification_from_json(data: JSON) -> Notification:
    where = "notification"
    doc = _object(data, where)
    return Notification(
        receiver=_text(doc, "receiver", where),
        group_key=_text(doc, "group_key", where),
        group_labels=_texts(doc, "group_labels", where),
        alerts=_events(doc, "alerts", where),
        created_at=_time(doc, "created_at", where),
        external_url=_maybe_text(doc, "external_url", where),
        common_labels=_texts(doc, "common_labels", where),
    )


# -- the grouper's state ---------------------------------------------------------------------


def group_to_json(group: Group) -> JSONObject:
    return {
        "receiver": group.receiver,
        "key": group.key,
        "labels": dict(group.labels),
        "group_interval": group.group_interval.total_seconds(),
        "flush_at": _iso(group.flush_at),
        "pending": [event_to_json(e) for e in group.pending],
        "last_sent_at": _iso(group.last_sent_at),
        "firing": list[JSON](sorted(group.firing)),
    }


def group_from_json(data: JSON, where: str = "group") -> Group:
    doc = _object(data, where)
    interval = doc.get("group_interval")
    if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
        raise CodecError(f"{where}.group_interval", "a number of seconds above 0")
    firing = doc.get("firing")
    if not isinstance(firing, list) or not all(isinstance(f, str) for f in firing):
        raise CodecError(f"{where}.firing", "a list of fingerprints")
    return Group(
        receiver=_text(doc, "receiver", where),
        key=_text(doc, "key", where),
        labels=_texts(doc, "labels", where),
        group_interval=timedelta(seconds=interval),
        flush_at=_maybe_time(doc, "flush_at", where),
        pending=_events(doc, "pending", where),
        last_sent_at=_maybe_time(doc, "last_sent_at", where),
        firing=frozenset(str(f) for f in firing),
    )


def groups_to_json(state: GroupState) -> dict[tuple[str, str], JSONObject]:
    """One document per (receiver, group key): how the state database keeps them."""
    return {ident: group_to_json(group) for ident, group in state.groups.items()}


def groups_from_json(docs: Mapping[tuple[str, str], JSON]) -> GroupState:
    groups: dict[tuple[str, str], Group] = {}
    for (receiver, key), doc in sorted(docs.items()):
        group = group_from_json(doc, f"group {receiver}")
        if (group.receiver, group.key) != (receiver, key):
            raise CodecError(f"group {receiver}", "the receiver and key it is stored under")
        groups[(receiver, key)] = group
    return GroupState(MappingProxyType(groups))


# -- fields ----------------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _object(data: JSON, where: str) -> Mapping[str, JSON]:
    if not isinstance(data, dict):
        raise CodecError(where, "a JSON object")
    return data


def _text(doc: Mapping[str, JSON], key: str, where: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str):
        raise CodecError(f"{where}.{key}", "text")
    return value


def _maybe_text(doc: Mapping[str, JSON], key: str, where: str) -> str | None:
    return None if doc.get(key) is None else _text(doc, key, where)


def _texts(doc: Mapping[str, JSON], key: str, where: str) -> Mapping[str, str]:
    value = doc.get(key)
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise CodecError(f"{where}.{key}", "an object of text values")
    return MappingProxyType({k: str(v) for k, v in value.items()})


def _time(doc: Mapping[str, JSON], key: str, where: str) -> datetime:
    value = doc.get(key)
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.utcoffset() is None:
        raise CodecError(f"{where}.{key}", "an ISO 8601 time with its offset")
    return moment


def _maybe_time(doc: Mapping[str, JSON], key: str, where: str) -> datetime | None:
    return None if doc.get(key) is None else _time(doc, key, where)


def _events(doc: Mapping[str, JSON], key: str, where: str) -> tuple[AlertEvent, ...]:
    value = doc.get(key)
    if not isinstance(value, list):
        raise CodecError(f"{where}.{key}", "a list of alerts")
    return tuple(event_from_json(item, f"{where}.{key}[{i}]") for i, item in enumerate(value))
