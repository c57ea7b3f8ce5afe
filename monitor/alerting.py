"""The alert pipeline: after each run, and on the grouper's timer, from results to notifications
waiting in the durable outbox.

    alerting = Alerting(app.state, AlertingSettings.from_config(config), wake=delivery.wake)
    alerting.after_run(run, now, report_url)   # after each run (and after App.record)
    alerting.tick(now)                         # at alerting.next_flush(), or every few seconds

Each step reads the alert records and the grouper's state, advances them with the pure
`alerts.lifecycle.advance` and `alerts.routing.group`, and writes the new records, the new
grouper state and the notifications due now into the outbox in one transaction
(`StateStore.advance_alerts`): a crash before the commit loses nothing (the step did not
happen), a crash after it doubles nothing (the outbox has it, and the step is not redone: a run
already alerted is skipped by its run id). Sending is `monitor.delivery`'s work.

Silences are those of config.yaml plus the API's (`StateStore.add_silence`) in force at the
step's time, read in the step's transaction: a silence created or expired through the API
applies from the next step on. An API silence that no longer reads is logged and ignored.

Alertmanager re-sends. Alertmanager ends an alert at its `endsAt` (featmon sends the push's time
+ `firing_ends_after`), or after its `resolve_timeout` without one, unless the alert is pushed
again; the lifecycle repeats a firing alert only every `repeat_interval` (hours), for every
receiver. So at each run step, every group of an `alertmanager` receiver that announced firing
alerts and has sent nothing for that receiver's `resend_interval` is given those alerts again
(those still firing and not silenced), for that receiver only (`_resends`): Alertmanager is told
at every run at most once per `resend_interval`, and no other receiver hears a repeat.

The state database down. With a `Standby` (the delivery worker's), a step the database fails
is taken from memory instead: from the alert state as the last step left it, its notifications
handed to the standby, which sends them at once. Later steps stay in memory until the database
takes the alert state back: the first step that finds it writes the records and groups of
memory and the standby's notifications (delivered, or still to send) in one transaction, then
goes on as usual. With several replicas each steps in memory on its own meanwhile; the last to
write back wins, and PagerDuty's dedup key (the alert's identity) keeps a page from doubling.

Silenced and inhibited alerts are logged and counted in the `Alerted` a step returns, for the
daemon's metrics. A stored record or group that no longer reads is logged and dropped (its
alert starts afresh) rather than stopping alerting for every other alert.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType

from alerts.codec import CodecError, groups_from_json, groups_to_json, notification_to_json
from alerts.config import AlertmanagerReceiver
from alerts.lifecycle import AlertingConfig, AlertRecord, Suppressed, Transition, advance, retire
from alerts.model import AlertState, Notification
from alerts.routing import Group, GroupState, Routed, RouteMatch, RoutingTree, group
from alerts.silences import Silence, Silences
from checks.result import JSON, RunResult
from monitor.config import Config
from monitor.delivery import Standby
from monitor.state import (
    AlertChange,
    AlertDocuments,
    NewNotification,
    StateError,
    StateStore,
    StoredGroup,
    StoredSilence,
)

log = logging.getLogger(__name__)

Step = Callable[[Mapping[str, AlertRecord], Silences], Transition]
"""One step's transition: the alert records and the silences in force in, the new state out."""


@dataclass(frozen=True)
class AlertingSettings:
    """What the pipeline needs from config.yaml, compiled once per (re)load."""

    alerting: AlertingConfig
    tree: RoutingTree
    silences: Silences = field(default_factory=Silences)
    external_url: str | None = None  # featmon's reports index, in every notification
    # alertmanager receiver -> its resend_interval: firing alerts are pushed again that often
    resend: Mapping[str, timedelta] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_config(cls, config: Config) -> AlertingSettings:
        kinds = {name: receiver.type for name, receiver in config.receivers.items()}
        return cls(
            alerting=config.alerting,
            tree=RoutingTree.from_config(config.route, kinds),
            silences=Silences(config.silences, config.maintenance_windows),
            external_url=config.reports.base_url,
            resend=MappingProxyType(
                {
                    name: receiver.resend_interval
                    for name, receiver in config.receivers.items()
                    if isinstance(receiver, AlertmanagerReceiver)
                }
            ),
        )


@dataclass(frozen=True)
class Alerted:
    """What one step did: the notifications it enqueued, the due alerts a silence muted and the
    alerts an inhibiting alert held back (fingerprint -> fingerprint of the inhibitor).
    `skipped`: the run had been alerted already, and nothing was done."""

    notifications: tuple[Notification, ...] = ()
    suppressed: tuple[Suppressed, ...] = ()
    inhibited: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    skipped: bool = False


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


class Alerting:
    """The pipeline over one state database. Holds no alert state of its own but a copy of the
    last step's, for the steps the database fails (only with a `standby`: without one they
    raise `StateError`). Build a new one from the new settings when the configuration is
    reloaded."""

    def __init__(
        self,
        state: StateStore,
        settings: AlertingSettings,
        wake: Callable[[], None] | None = None,
        standby: Standby | None = None,
    ) -> None:
        self._state = state
        self._settings = settings
        self._wake = wake  # called after notifications were enqueued (Delivery.wake)
        self._standby = standby
        self._known = AlertDocuments({}, {})  # the alert state the last step left
        self._offline = False  # steps go to memory until the database takes the state back
        self._lock = threading.Lock()  # steps take turns (the database's lock, in memory)

    @property
    def offline(self) -> bool:
        """True while steps are taken in memory."""
        return self._offline

    def adopt(self, old: Alerting) -> None:
        """After a reload: go on from the alert state of `old` while it is in memory only
        (the notifications of its standby are moved by the caller)."""
        with old._lock:
            known, offline = old._known, old._offline
        with self._lock:
            if offline:
                self._known, self._offline = known, True

    def after_run(self, run: RunResult, now: datetime, report_url: str | None = None) -> Alerted:
        """Advance every alert `run` measures and enqueue what is due. Raises `StateError`
        (nothing was written) when the state database fails."""
        settings = self._settings

        def transition(records: Mapping[str, AlertRecord], silences: Silences) -> Transition:
            return advance(
                records,
                run,
                settings.alerting,
                now,
                report_url,
                silences=silences,
                repeat_for=settings.tree.repeat_interval,
            )

        return self._step(f"run {run.run_id}", now, transition, run.run_id)

    def tick(self, now: datetime) -> Alerted:
        """Send the groups whose wait or interval is over. Reads one row and writes nothing
        when no group is due."""
        if self._offline:
            due = _next_flush(self._known.groups)
        else:
            try:
                due = self._state.next_group_flush()
            except StateError:
                if self._standby is None:
                    raise
                due = now  # the step finds the database down and goes to memory
        if due is None or due > now:
            return Alerted()
        return self._step("timer", now, None, None)

    def retire(self, views: Collection[str], now: datetime) -> Alerted:
        """After a reload: resolve the alerts of feature views no longer configured."""
        settings = self._settings

        def transition(records: Mapping[str, AlertRecord], _silences: Silences) -> Transition:
            return retire(records, views, settings.alerting, now)

        return self._step("reload", now, transition, None)

    def next_flush(self) -> datetime | None:
        """When `tick` next has something to do; None when no group waits."""
        return self._state.next_group_flush()

    # -- one step --------------------------------------------------------------------------------

    def _step(
        self,
        what: str,
        now: datetime,
        transition: Step | None,
        run_id: str | None,
    ) -> Alerted:
        started, cpu = time.monotonic(), time.thread_time()
        with self._lock:
            if self._offline and not self._write_back(now):
                alerted = self._step_in_memory(now, transition)
            else:
                try:
                    found = self._step_in_database(now, transition, run_id)
                except StateError as exc:
                    if self._standby is None:
                        raise
                    log.error("alerting %s from memory: the state database failed: %s", what, exc)
                    self._offline = True
                    found = self._step_in_memory(now, transition)
                if found is None:
                    return Alerted(skipped=True)
                alerted = found
        _log_step(what, alerted, time.monotonic() - started, time.thread_time() - cpu)
        if alerted.notifications and self._wake is not None:
            self._wake()
        return alerted

    def _step_in_database(
        self, now: datetime, transition: Step | None, run_id: str | None
    ) -> Alerted | None:
        done: list[tuple[AlertDocuments, AlertChange, Alerted]] = []

        def step(docs: AlertDocuments) -> AlertChange:
            change, alerted = self._compute(docs, now, transition)
            done.append((docs, change, alerted))
            return change

        if self._state.advance_alerts(step, now, run_id) is None:
            return None
        docs, change, alerted = done[-1]
        self._known = AlertDocuments(change.records, change.groups, docs.silences)
        return alerted

    def _step_in_memory(self, now: datetime, transition: Step | None) -> Alerted:
        """The step over the alert state of memory; its notifications go to the standby."""
        if self._standby is None:  # pragma: no cover - _step only comes here with one
            raise RuntimeError("alerting from memory needs a standby")
        change, alerted = self._compute(self._known, now, transition)
        self._known = AlertDocuments(change.records, change.groups, self._known.silences)
        for notification, row in zip(alerted.notifications, change.outbox, strict=True):
            self._standby.add(notification, row)
        return alerted

    def _write_back(self, now: datetime) -> bool:
        """Give the state database the alert state of memory and the standby's notifications;
        False (nothing changed) while it cannot take them."""
        if self._standby is None:  # pragma: no cover - offline only with a standby
            return True
        known = self._known

        def write(rows: tuple[NewNotification, ...]) -> None:
            change = AlertChange(records=known.records, groups=known.groups, outbox=rows)
            self._state.advance_alerts(lambda _before: change, now)

        try:
            handed = self._standby.hand_over(write)
        except StateError as exc:
            log.debug("alerting stays in memory: %s", exc)
            return False
        if handed is None:  # a notification is being sent from memory: next step
            return False
        self._offline = False
        log.info(
            "the state database is back: the alert state of memory is written, and %d "
            "notifications made meanwhile are in the outbox",
            handed,
        )
        return True

    def _compute(
        self,
        docs: AlertDocuments,
        now: datetime,
        transition: Step | None,
    ) -> tuple[AlertChange, Alerted]:
        """Pure but for logging: the documents in, the change and its summary out."""
        settings = self._settings
        records: Mapping[str, Mapping[str, JSON]] = docs.records
        changed = Transition(records={}, events=())
        groups = _read_groups(docs.groups)
        resent: tuple[Routed, ...] = ()
        if transition is not None:
            silences = _with_api_silences(settings.silences, docs.silences)
            changed = transition(_read_records(docs.records), silences)
            records = {fp: r.as_json() for fp, r in changed.records.items()}
            resent = _resends(groups, changed.records, settings.resend, now, silences)
        grouped = group(
            groups,
            (*resent, *settings.tree.routed(changed.events)),  # the step's own events win
            now,
            settings.external_url,
        )
        change = AlertChange(
            records=records,
            groups=_stored_groups(grouped.state),
            outbox=tuple(_enqueued(n) for n in grouped.notifications),
        )
        alerted = Alerted(grouped.notifications, changed.suppressed, changed.inhibited)
        return change, alerted


def _next_flush(groups: Mapping[tuple[str, str], StoredGroup]) -> datetime | None:
    return min((g.flush_at for g in groups.values() if g.flush_at is not None), default=None)


def _resends(
    groups: GroupState,
    records: Mapping[str, AlertRecord],
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
        for fp in sorted(current.firing):
            record = records.get(fp)
            if record is None or record.state is not AlertState.FIRING:
                continue  # resolved in this step: its resolved event is on its way
            if silences.is_silenced(record.labels, now) is not None:
                continue
            out.append(Routed(record.event(), (match,)))
    return tuple(out)


def _with_api_silences(config: Silences, stored: Iterable[StoredSilence]) -> Silences:
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


def _read_records(docs: Mapping[str, Mapping[str, JSON]]) -> dict[str, AlertRecord]:
    records: dict[str, AlertRecord] = {}
    for fp, doc in docs.items():
        try:
            records[fp] = AlertRecord.from_json(doc)
        except (TypeError, ValueError) as exc:
            log.error("alert %s: its stored record does not read (%s); it starts afresh", fp, exc)
    return records


def _read_groups(docs: Mapping[tuple[str, str], StoredGroup]) -> GroupState:
    groups: dict[tuple[str, str], Group] = {}
    for ident, stored in sorted(docs.items()):
        try:
            groups.update(groups_from_json({ident: dict(stored.document)}).groups)
        except CodecError as exc:
            log.error("alert group of receiver %r: it does not read (%s); dropped", ident[0], exc)
    return GroupState(MappingProxyType(groups))


def _stored_groups(state: GroupState) -> dict[tuple[str, str], StoredGroup]:
    docs = groups_to_json(state)
    return {ident: StoredGroup(docs[ident], g.flush_at) for ident, g in state.groups.items()}


def _enqueued(notification: Notification) -> NewNotification:
    return NewNotification(
        receiver=notification.receiver,
        group_key=notification.group_key,
        dedup_key=dedup_key(notification),
        notification=notification_to_json(notification),
        created_at=notification.created_at,
    )


def _log_step(what: str, alerted: Alerted, wall: float, cpu: float) -> None:
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
