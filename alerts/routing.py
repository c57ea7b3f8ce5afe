"""The routing tree (which receivers an alert goes to) and the grouper (when, and together with
which other alerts). Pure: the grouper's state is a value passed in and handed back.

The tree follows Alertmanager. `route:` in config.yaml is the root; it receives every alert and
carries no conditions. A child route matches when all of its conditions hold: `match` (label
equals value), `match_re` (the whole value matches the regex: anchored at both ends), `severity`
(the severity label is one of the list) and `matchers` (Alertmanager's newer spelling, as in
silences: `=`, `!=`, `=~`, `!~`); a label the alert lacks reads as "". Children are tried in
order; the first that matches takes the alert (its own children first, recursively) and the
search stops, unless that child says `continue: true`. When no child matches, the route itself
takes it. A route inherits `receiver`, `group_by`, `group_wait`, `group_interval` and
`repeat_interval` from its parent; `receiver: null` written on a route means report only.

Without a `route:`, the default tree sends P1 to every pagerduty receiver and P1 to P3 to every
receiver of any other type (slack, webhook, file, alertmanager), each a `continue` child of a
report-only root, so P4 appears in reports only. Receivers are found by their `type`.

The grouper keeps one group per (receiver, group key): the route and the values of its `group_by`
labels (default `store`, so a blind or failing store is one notification per receiver, not one
per check). A new group waits `group_wait` before its first notification, collecting what else
arrives; later changes are batched and sent at most every `group_interval`. A notification carries
the alert events that arrived since the group's last one (new, repeated or resolved); repeats are
the lifecycle's (see `alerts.lifecycle`), at the shortest `repeat_interval` among the routes that
take the alert.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from alerts.model import AlertEvent, AlertState, Notification
from alerts.silences import Matcher, MatcherField
from checks.duration import Duration
from checks.model import Severity
from checks.serde import FrozenMap, IsoTime

DEFAULT_GROUP_BY = ("store",)
DEFAULT_GROUP_WAIT = timedelta(seconds=30)
DEFAULT_GROUP_INTERVAL = timedelta(minutes=5)
ALL_LABELS = "..."  # group_by: ["..."] groups by every label: one group per alert
PAGER_TYPES = frozenset({"pagerduty"})
PAGER_SEVERITIES: tuple[Severity, ...] = ("P1",)
CHAT_SEVERITIES: tuple[Severity, ...] = ("P1", "P2", "P3")

LabelName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
Path = tuple[str | int, ...]


class RouteConfig(BaseModel):
    """One node of the routing tree."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    receiver: str | None = Field(
        None, description="Receiver name; inherited if unset; `null` means report only."
    )
    match: dict[LabelName, str] = Field(default_factory=dict, description="Label equals value.")
    match_re: dict[LabelName, str] = Field(
        default_factory=dict, description="Label matches the regex, anchored at both ends."
    )
    severity: tuple[Severity, ...] = Field((), description="Severity is one of these.")
    matchers: tuple[MatcherField, ...] = Field(
        (), description='Alertmanager matchers: `team="ml"`, `store=~"redis.*"`, `env!="dev"`.'
    )
    continue_: bool = Field(
        False, alias="continue", description="Keep looking at later siblings after a match."
    )
    group_by: tuple[str, ...] | None = Field(
        None, description='Labels that split alerts into notifications; ["..."]: every label.'
    )
    group_wait: Duration | None = Field(None, description="Wait before a new group's first send.")
    group_interval: Duration | None = Field(
        None, description="Least time between two sends of one group."
    )
    repeat_interval: Duration | None = Field(
        None, description="Re-notify a firing alert this often (default: `alerting`'s)."
    )
    routes: tuple[RouteConfig, ...] = ()

    @field_validator("match_re")
    @classmethod
    def _regexes(cls, value: dict[str, str]) -> dict[str, str]:
        for name, pattern in value.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(
                    f"expected a regular expression for {name}, found {pattern!r} ({exc})"
                ) from None
        return value

    @field_validator("group_by")
    @classmethod
    def _group_by(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None or value == (ALL_LABELS,):
            return value
        for name in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f'expected label names or ["..."] alone, found {name!r}')
        return value

    @field_validator("group_interval", "repeat_interval")
    @classmethod
    def _positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError(f"expected a duration above 0s, found {value}")
        return value


class RootRouteConfig(RouteConfig):
    """`route:` in config.yaml: receives every alert, so it has no conditions."""

    @model_validator(mode="after")
    def _no_conditions(self) -> RootRouteConfig:
        written = [
            name
            for name, present in (
                ("match", bool(self.match)),
                ("match_re", bool(self.match_re)),
                ("severity", bool(self.severity)),
                ("matchers", bool(self.matchers)),
                ("continue", self.continue_),
            )
            if present
        ]
        if written:
            raise ValueError(
                "expected no conditions on the root route (it receives every alert), "
                f"found {', '.join(written)}"
            )
        return self


def default_route(receiver_types: Mapping[str, str]) -> RootRouteConfig:
    """The tree used when config.yaml has no `route:`, from receiver name -> type."""
    routes = [
        {
            "receiver": name,
            "severity": list(PAGER_SEVERITIES if kind in PAGER_TYPES else CHAT_SEVERITIES),
            "continue": True,
        }
        for name, kind in receiver_types.items()
    ]
    return RootRouteConfig.model_validate({"routes": routes})


def receiver_problems(
    route: RouteConfig, receivers: Collection[str], path: Path = ("route",)
) -> list[tuple[Path, str]]:
    """Each `receiver` that config.yaml does not define, with its YAML path."""
    out: list[tuple[Path, str]] = []
    if route.receiver is not None and route.receiver not in receivers:
        known = ", ".join(sorted(receivers)) or "none defined"
        out.append(
            (
                (*path, "receiver"),
                f"expected a receiver of `receivers` ({known}), found {route.receiver!r}",
            )
        )
    for index, child in enumerate(route.routes):
        out.extend(receiver_problems(child, receivers, (*path, "routes", index)))
    return out


@dataclass(frozen=True)
class RouteMatch:
    """One route that takes an alert: where it goes and how it is grouped."""

    receiver: str
    route: str  # the route's YAML path, e.g. `route.routes[0]`
    group_key: str  # the route and the values of its group_by labels
    group_labels: Mapping[str, str]
    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta | None  # None: the lifecycle's default


@dataclass(frozen=True)
class _Inherited:
    receiver: str | None
    group_by: tuple[str, ...]
    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta | None


@dataclass(frozen=True)
class _Node:
    path: str
    settings: _Inherited
    match: tuple[tuple[str, str], ...]
    match_re: tuple[tuple[str, re.Pattern[str]], ...]
    severity: frozenset[str]
    matchers: tuple[Matcher, ...]
    continue_: bool
    children: tuple[_Node, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.severity and labels.get("severity", "") not in self.severity:
            return False
        if any(labels.get(name, "") != value for name, value in self.match):
            return False
        if not all(m.matches(labels) for m in self.matchers):
            return False
        return all(pattern.fullmatch(labels.get(name, "")) for name, pattern in self.match_re)

    def walk(self, labels: Mapping[str, str]) -> list[_Node]:
        """Alertmanager's search: matching children in order until one does not `continue`."""
        taken: list[_Node] = []
        for child in self.children:
            if child.matches(labels):
                taken.extend(child.walk(labels))
                if not child.continue_:
                    break
        return taken or [self]

    def take(self, labels: Mapping[str, str]) -> RouteMatch | None:
        s = self.settings
        if s.receiver is None:
            return None
        if s.group_by == (ALL_LABELS,):
            grouped = dict(labels)
        else:
            grouped = {name: labels[name] for name in s.group_by if name in labels}
        shown = ",".join(
            f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in sorted(grouped.items())
        )
        return RouteMatch(
            receiver=s.receiver,
            route=self.path,
            group_key=f"{self.path}{{{shown}}}",
            group_labels=MappingProxyType(grouped),
            group_wait=s.group_wait,
            group_interval=s.group_interval,
            repeat_interval=s.repeat_interval,
        )


def _compile(config: RouteConfig, parent: _Inherited | None, path: str) -> _Node:
    if parent is None:
        parent = _Inherited(
            None, DEFAULT_GROUP_BY, DEFAULT_GROUP_WAIT, DEFAULT_GROUP_INTERVAL, None
        )
        receiver = config.receiver
    else:  # unset inherits; `receiver: null` written on a child means report only
        receiver = config.receiver if "receiver" in config.model_fields_set else parent.receiver
    settings = _Inherited(
        receiver=receiver,
        group_by=parent.group_by if config.group_by is None else config.group_by,
        group_wait=parent.group_wait if config.group_wait is None else config.group_wait,
        group_interval=config.group_interval or parent.group_interval,
        repeat_interval=config.repeat_interval or parent.repeat_interval,
    )
    return _Node(
        path=path,
        settings=settings,
        match=tuple(sorted(config.match.items())),
        match_re=tuple((k, re.compile(v)) for k, v in sorted(config.match_re.items())),
        severity=frozenset(config.severity),
        matchers=config.matchers,
        continue_=config.continue_,
        children=tuple(
            _compile(child, settings, f"{path}.routes[{index}]")
            for index, child in enumerate(config.routes)
        ),
    )


@dataclass(frozen=True)
class RoutingTree:
    """A compiled routing tree: `route(labels)` says which receivers take an alert, and how."""

    root: _Node

    @classmethod
    def from_config(
        cls, route: RouteConfig | None, receiver_types: Mapping[str, str]
    ) -> RoutingTree:
        """`route` as written, or the default tree built from receiver name -> type."""
        written = route if route is not None else default_route(receiver_types)
        return cls(_compile(written, None, "route"))

    def route(self, labels: Mapping[str, str]) -> list[RouteMatch]:
        """The routes that take `labels`, in tree order; empty means report only."""
        taken = (node.take(labels) for node in self.root.walk(labels))
        return [match for match in taken if match is not None]

    def repeat_interval(self, labels: Mapping[str, str]) -> timedelta | None:
        """The shortest `repeat_interval` among the routes that take `labels`, if any sets one."""
        written = [m.repeat_interval for m in self.route(labels) if m.repeat_interval is not None]
        return min(written, default=None)

    def routed(self, events: Iterable[AlertEvent]) -> tuple[Routed, ...]:
        return tuple(Routed(event, tuple(self.route(event.labels))) for event in events)


@dataclass(frozen=True)
class Routed:
    """An alert event and the routes that take it: what the grouper is given."""

    event: AlertEvent
    routes: tuple[RouteMatch, ...]


@dataclass(frozen=True)
class Group:
    """One (receiver, group key): what waits to be sent, and when it may go."""

    receiver: str
    key: str
    labels: FrozenMap[str, str]
    # in JSON: seconds
    group_interval: Annotated[
        timedelta, Field(gt=timedelta(0)), PlainSerializer(timedelta.total_seconds)
    ]
    flush_at: IsoTime | None  # None: nothing waits
    pending: tuple[AlertEvent, ...]  # the latest event of each alert since the last send
    last_sent_at: IsoTime | None
    # fingerprints this group last announced as firing; in JSON a sorted list
    firing: Annotated[frozenset[str], PlainSerializer(sorted)]


@dataclass(frozen=True)
class GroupState:
    """Every group, by (receiver, group key). Persist it between calls; start empty."""

    groups: Mapping[tuple[str, str], Group] = field(default_factory=lambda: MappingProxyType({}))

    def next_flush(self) -> datetime | None:
        """When the grouper next has something to send: call `group(state, (), that time)`."""
        return min((g.flush_at for g in self.groups.values() if g.flush_at), default=None)


@dataclass(frozen=True)
class Grouped:
    state: GroupState
    notifications: tuple[Notification, ...]


def group(
    state: GroupState,
    routed: Iterable[Routed],
    now: datetime,
    external_url: str | None = None,
) -> Grouped:
    """Add `routed` events to their groups and send every group that is due at `now`."""
    groups = dict(state.groups)
    for item in routed:
        for match in item.routes:
            ident = (match.receiver, match.group_key)
            groups[ident] = _add(groups.get(ident), match, item.event, now)
    notifications: list[Notification] = []
    for ident in sorted(groups):
        current = groups[ident]
        if current.flush_at is None or current.flush_at > now:
            continue
        notification, after = _flush(current, now, external_url)
        if notification is not None:
            notifications.append(notification)
        if after is None:
            del groups[ident]
        else:
            groups[ident] = after
    return Grouped(GroupState(MappingProxyType(groups)), tuple(notifications))


def _add(current: Group | None, match: RouteMatch, event: AlertEvent, now: datetime) -> Group:
    if current is None:
        current = Group(
            receiver=match.receiver,
            key=match.group_key,
            labels=match.group_labels,
            group_interval=match.group_interval,
            flush_at=now + match.group_wait,
            pending=(),
            last_sent_at=None,
            firing=frozenset(),
        )
    fp = event.fingerprint
    earlier = [e for e in current.pending if e.fingerprint == fp]
    pending = tuple(e for e in current.pending if e.fingerprint != fp)
    unannounced = fp not in current.firing and any(e.state is AlertState.FIRING for e in earlier)
    if not (event.state is AlertState.RESOLVED and unannounced):
        pending = (*pending, event)  # else: fired and resolved before anyone was told
    flush_at = current.flush_at
    if flush_at is None:
        last = current.last_sent_at
        flush_at = now if last is None else max(now, last + match.group_interval)
    return replace(current, pending=pending, flush_at=flush_at, group_interval=match.group_interval)


def _flush(
    current: Group, now: datetime, external_url: str | None
) -> tuple[Notification | None, Group | None]:
    alerts = tuple(sorted(current.pending, key=_order))
    firing = set(current.firing)
    for event in alerts:
        if event.state is AlertState.FIRING:
            firing.add(event.fingerprint)
        else:
            firing.discard(event.fingerprint)
    notification = None
    if alerts:
        notification = Notification(
            receiver=current.receiver,
            group_key=current.key,
            group_labels=current.labels,
            alerts=alerts,
            created_at=now,
            external_url=external_url,
            common_labels=MappingProxyType(_common(alerts)),
        )
    if not firing:
        return notification, None  # an empty group is forgotten, as in Alertmanager
    sent = now if alerts else current.last_sent_at
    after = replace(current, pending=(), flush_at=None, last_sent_at=sent, firing=frozenset(firing))
    return notification, after


def _order(event: AlertEvent) -> tuple[bool, str, list[tuple[str, str]]]:
    """Firing first, then by severity, then by labels: the same input, the same message."""
    return (event.state is not AlertState.FIRING, event.severity, sorted(event.labels.items()))


def _common(alerts: tuple[AlertEvent, ...]) -> dict[str, str]:
    first = dict(alerts[0].labels)
    return {
        name: value
        for name, value in sorted(first.items())
        if all(a.labels.get(name) == value for a in alerts[1:])
    }
