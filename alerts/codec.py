"""JSON for the alerting values that outlive a process: `AlertRecord` (an alert's state),
`Notification` (what the outbox keeps, with its `AlertEvent`s, until a receiver takes it) and
`Group` (the grouper's memory between runs).

The documents are derived from the types by `checks.serde` (times ISO 8601 with their offset,
a group's interval in seconds); a document written by `*_to_json` reads back equal through
`*_from_json`. Reading a document that is not one raises `CodecError` (a `ValueError`) naming
the field, never echoing its values.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TypeVar

from pydantic import ValidationError

from alerts.lifecycle import AlertRecord
from alerts.model import Notification
from alerts.routing import Group, GroupState
from checks.serde import JSON, from_json, to_object

JSONObject = dict[str, JSON]
T = TypeVar("T")


class CodecError(ValueError):
    """A stored document is not the value it should hold."""

    def __init__(self, field: str, expected: str) -> None:
        self.field = field
        self.expected = expected
        super().__init__(f"{field}: expected {expected}")


def read(cls: type[T], data: object, where: str) -> T:
    """The `cls` that `data` holds; a `CodecError` at the first field that does not read."""
    try:
        return from_json(cls, data)
    except ValidationError as exc:
        first = exc.errors(include_input=False)[0]
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
        raise CodecError(f"{where}{path}", _expected(first["type"], first["msg"])) from None


def _expected(kind: str, message: str) -> str:
    """What pydantic's message says was expected, as `CodecError` words it."""
    if kind == "missing":
        return "a value, found none"
    return message.removeprefix("Value error, expected ").removeprefix("Input should be ")


def record_to_json(record: AlertRecord) -> JSONObject:
    return to_object(record)


def record_from_json(data: object) -> AlertRecord:
    return read(AlertRecord, data, "record")


def notification_to_json(notification: Notification) -> JSONObject:
    return to_object(notification)


def notification_from_json(data: JSON) -> Notification:
    return read(Notification, data, "notification")


def group_to_json(group: Group) -> JSONObject:
    return to_object(group)


def group_from_json(data: JSON, where: str = "group") -> Group:
    return read(Group, data, where)


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
