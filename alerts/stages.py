"""The stages of the alert pipeline (`alerts.pipeline` composes them), each a small function:
read the stored state, silence, step the lifecycle, route, group, resend, write the outbox,
log. Pure but for logging: a stored record or group that no longer reads is logged and
dropped (its alert starts afresh) rather than stopping alerting for every other alert.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType

from alerts.codec import (
    CodecError,
    groups_from_json,
    groups_to_json,
    notification_to_json,
    record_from_json,
    record_to_json,
)
from alerts.lifecycle import AlertRecord, Suppressed, Transition
from alerts.model import AlertState, Notification, subject_of
from alerts.routing import Group, Grouped, GroupState, Routed, RouteMatch, RoutingTree
from alerts.silences import Silence, Silences
from alerts.stored import (
    AlertChange,
    GroupId,
    NewNotification,
    StoredGroup,
    StoredRecord,
    StoredSilence,
)

log = logging.getLogger(__name__)

Step = Callable[[Mapping[str, AlertRecord], Silences], Transition]
"""One step's transition: the alert records and the silences in force in, the new state out."""
NOTHING = Transition(records={}, events=())


@dataclass(frozen=True)
class Alerted:
    """What one step did: the notifications it enqueued, the due alerts a silence muted and the
    alerts an inhibiting alert held back (fingerprint -> fingerprint of the inhibitor).
    `skipped`: the run had been alerted already, and nothing was done."""

    notifications: tuple[Notification, ...] = ()
    suppressed: tuple[Suppressed, ...] = ()
    inhibited: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    skipped: bool = False


# -- silence ----------------------------------------------------------------------------------


def with_api_silences(config: Silences, stored: Iterable[StoredSilence]) -> Silences:
    """The silences of config.yaml and those of the API that read."""
    api: list[Silence] = []
    for found in stored:
        try:
            api.append(Silence.model_validate(found.document))
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            log.error("silence %s: its stored document does not read (%s); ignored", found.id, exc)
    if not api:
        return config
    return Silences(config.silences + tuple(api), config.windows)


# -- read and write the stored state ----------------------------------------------------------


def read_records(stored: Mapping[str, StoredRecord]) -> dict[str, AlertRecord]:
    records: dict[str, AlertRecord] = {}
    for fp, found in stored.items():
        try:
            records[fp] = record_from_json(found.document)
        except CodecError as exc:
            log.error("alert %s: its stored record does not read (%s); it starts afresh", fp, exc)
    return records


def stored_records(records: Mapping[str, AlertRecord]) -> dict[str, StoredRecord]:
    return {fp: StoredRecord(record_to_json(r), subject_of(r.labels)) for fp, r in records.items()}


def read_groups(stored: Mapping[GroupId, StoredGroup]) -> GroupState:
    groups: dict[GroupId, Group] = {}
    for ident, found in sorted(stored.items()):
        try:
            groups.update(groups_from_json({ident: dict(found.document)}).groups)
        except CodecError as exc:
            log.error("alert group of receiver %r: it does not read (%s); dropped", ident[0], exc)
    return GroupState(MappingProxyType(groups))


def stored_groups(state: GroupState) -> dict[GroupId, StoredGroup]:
    docs = groups_to_json(state)
    return {ident: StoredGroup(docs[ident], g.flush_at) for ident, g in state.groups.items()}


# -- route and group ----------------------------------------------------------------------------


def touched(tree: RoutingTree, changed: Transition) -> set[GroupId]:
    """The groups a step may change: those of its events, and those of every firing alert it
    holds (an Alertmanager group resends them)."""
    labels = [e.labels for e in changed.events]
    labels += [r.labels for r in changed.records.values() if r.state is AlertState.FIRING]
    return {(m.receiver, m.group_key) for one in labels for m in tree.route(one)}


def resends(
    groups: GroupState,
    records: Callable[[Collection[str]], Mapping[str, AlertRecord]],
    resend: Mapping[str, timedelta],
    now: datetime,
    silences: Silences,
) -> tuple[Routed, ...]:
    """The firing alerts to push again to the groups of Alertmanager receivers (`resend`:
    receiver -> interval) that sent nothing for that interval and have nothing waiting."""
    out: list[Routed] = []
    for (receiver, _key), current in sorted(groups.groups.items()):
        interval = resend.get(receiver)
        if interval is None or current.flush_at is not None or current.last_sent_at is None:
            continue  # not Alertmanager; or a send is coming anyway; or never sent
        if now - current.last_sent_at < interval:
            continue
        match = RouteMatch(
            receiver=receiver,
            route=current.key,
            group_key=current.key,
            group_labels=current.labels,
            group_wait=timedelta(0),  # unused: the group exists
            group_interval=current.group_interval,
            repeat_interval=None,
        )
        found = records(current.firing)
        for fp in sorted(current.firing):
            record = found.get(fp)
            if record is None or record.state is not AlertState.FIRING:
                continue  # resolved in this step: its resolved event is on its way
            if silences.is_silenced(record.labels, now) is not None:
                continue
            out.append(Routed(record.event(), (match,)))
    return tuple(out)


# -- the outbox ---------------------------------------------------------------------------------


def dedup_key(notification: Notification) -> str:
    """The identity of one notification in the outbox: its receiver, group, time and the state
    of each alert it carries. The same step computed twice gives the same key."""
    identity = [
        notification.receiver,
        notification.group_key,
        notification.created_at.isoformat(),
        sorted((a.fingerprint, a.state.value) for a in notification.alerts),
    ]
    text = json.dumps(identity, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def enqueued(notification: Notification) -> NewNotification:
    return NewNotification(
        receiver=notification.receiver,
        group_key=notification.group_key,
        dedup_key=dedup_key(notification),
        notification=notification_to_json(notification),
        created_at=notification.created_at,
    )


def change_of(
    records: Mapping[str, StoredRecord], changed: Transition | None, grouped: Grouped
) -> AlertChange:
    """What the step leaves: its records (those read, when it stepped no lifecycle), its groups
    and its notifications for the outbox."""
    return AlertChange(
        records=records if changed is None else stored_records(changed.records),
        groups=stored_groups(grouped.state),
        outbox=tuple(enqueued(n) for n in grouped.notifications),
    )


# -- log ----------------------------------------------------------------------------------------


def log_step(what: str, alerted: Alerted, wall: float, cpu: float) -> None:
    for muted in alerted.suppressed:
        log.info(
            "alert %s (%s) is due but silenced by %s until %s",
            muted.event.fingerprint,
            muted.event.labels.get("alertname", ""),
            muted.silence.id,
            muted.silence.ends_at.isoformat(),
        )
    for fp, by in alerted.inhibited.items():
        log.debug("alert %s is inhibited by %s", fp, by)
    log.info(
        "alerting %s: %d notifications enqueued (%s), %d silenced, %d inhibited, "
        "in %.1f ms (CPU %.1f ms)",
        what,
        len(alerted.notifications),
        _receivers(alerted.notifications),
        len(alerted.suppressed),
        len(alerted.inhibited),
        wall * 1000,
        cpu * 1000,
    )


def _receivers(notifications: Iterable[Notification]) -> str:
    counts: dict[str, int] = {}
    for n in notifications:
        counts[n.receiver] = counts.get(n.receiver, 0) + 1
    return ", ".join(f"{name}: {count}" for name, count in sorted(counts.items())) or "none"
