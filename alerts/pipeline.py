"""The alert pipeline: after each run, and on the grouper's timer, from results to notifications
waiting in the durable outbox.

    alerting = Alerting(store, settings, wake=delivery.wake, standby=standby)
    alerting.after_run(run, now, report_url)   # after each run (and after App.record)
    alerting.tick(now)                         # at alerting.next_flush(), or every few seconds

One step, as `Alerting._stages` reads (each stage a function of `alerts.stages`):

    silence    the silences of config.yaml, and those of the API in force at the step's time
    lifecycle  `alerts.lifecycle.advance` (or `retire`): records advanced, inhibitions applied
    route      the routing tree: each event to its receivers' groups
    group      the groups the step touches, read and locked; due alerts resent to Alertmanager;
               `alerts.routing.group` adds the events and sends what is due
    outbox     the records, groups and notifications written in the step's transaction
    deliver    the delivery worker woken (`alerts.delivery`)

A step works on a part of the alert state (`AlertScope`): a run's step reads and locks the
records of its run's feature views and then the groups its alerts go to; the timer's the groups
due; a reload's (`retire`) and the first step of an `Alerting` all of it. The store's
transaction is that part's (`AlertStore.alert_transaction`): a crash before the commit loses
nothing (the step did not happen), a crash after it doubles nothing (the outbox has it, and a
run already alerted is skipped by its run id). API silences apply from the next step on.

Alertmanager re-sends. Alertmanager ends an alert at its `endsAt` (featmon sends the push's time
+ `firing_ends_after`), unless the alert is pushed again; so at each run step, every touched
group of an `alertmanager` receiver that announced firing alerts and has sent nothing for that
receiver's `resend_interval` is given those alerts again, for that receiver only.

The store down. With a `Standby` (the delivery worker's), a step the store fails is taken from
memory instead (`alerts.memory`: the state as the last steps left it), its notifications handed
to the standby, which sends them at once. Later steps stay in memory until the store takes the
state back: the first step that finds it writes the records and groups of memory and the
standby's notifications (delivered, or still to send) in one transaction, then goes on as usual.
With several replicas each steps in memory on its own meanwhile; the last to write back wins,
and PagerDuty's dedup key (the alert's identity) keeps a page from doubling.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType

from alerts import stages
from alerts.abc import AlertStore, AlertTransaction
from alerts.config import AlertmanagerReceiver, Receiver
from alerts.errors import AlertStoreError
from alerts.lifecycle import AlertingConfig, AlertRecord, Transition, advance, retire
from alerts.memory import Recording, Remembered
from alerts.routing import RootRouteConfig, Routed, RoutingTree, group
from alerts.silences import Silences
from alerts.stages import Alerted, Step
from alerts.standby import Standby
from alerts.stored import AlertChange, AlertScope, NewNotification
from checks.result import RunResult

__all__ = ["Alerted", "Alerting", "AlertingSettings"]

log = logging.getLogger(__name__)


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
    def of(
        cls,
        alerting: AlertingConfig,
        route: RootRouteConfig | None,
        receivers: Mapping[str, Receiver],
        silences: Silences,
        external_url: str | None,
    ) -> AlertingSettings:
        kinds = {name: receiver.type for name, receiver in receivers.items()}
        resend = {
            name: receiver.resend_interval
            for name, receiver in receivers.items()
            if isinstance(receiver, AlertmanagerReceiver)
        }
        return cls(
            alerting, RoutingTree.from_config(route, kinds), silences, external_url,
            MappingProxyType(resend),
        )  # fmt: skip


class Alerting:
    """The pipeline over one `AlertStore`. Remembers the alert state the steps left, for the
    steps the store fails (only with a `standby`: without one they raise `AlertStoreError`).
    Build a new one from the new settings when the configuration is reloaded."""

    def __init__(
        self,
        store: AlertStore,
        settings: AlertingSettings,
        wake: Callable[[], None] | None = None,
        standby: Standby | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._wake = wake  # called after notifications were enqueued (Delivery.wake)
        self._standby = standby
        self._memory = Remembered()
        self._offline = False  # steps go to memory until the store takes the state back
        self._lock = threading.Lock()  # steps take turns (the store's locks, in memory)

    @property
    def offline(self) -> bool:
        """True while steps are taken in memory."""
        return self._offline

    def adopt(self, old: Alerting) -> None:
        """After a reload: go on from the alert state of `old` while it is in memory only
        (the notifications of its standby are moved by the caller)."""
        with old._lock:
            memory, offline = old._memory, old._offline
        with self._lock:
            if offline:
                self._memory, self._offline = memory, True

    def after_run(self, run: RunResult, now: datetime, report_url: str | None = None) -> Alerted:
        """Advance every alert `run` measures and enqueue what is due. Raises `AlertStoreError`
        (nothing was written) when the store fails and there is no standby."""
        settings = self._settings

        def transition(records: Mapping[str, AlertRecord], silences: Silences) -> Transition:
            return advance(
                records, run, settings.alerting, now, report_url,
                silences=silences, repeat_for=settings.tree.repeat_interval,
            )  # fmt: skip

        scope = AlertScope.of({r.subject for r in run.results})
        return self._step(f"run {run.run_id}", now, scope, transition, run.run_id)

    def tick(self, now: datetime) -> Alerted:
        """Send the groups whose wait or interval is over. Reads one row and writes nothing
        when no group is due."""
        if self._offline:
            due = self._memory.next_flush()
        else:
            try:
                due = self._store.next_group_flush()
            except AlertStoreError:
                if self._standby is None:
                    raise
                due = now  # the step finds the store down and goes to memory
        if due is None or due > now:
            return Alerted()
        return self._step("timer", now, AlertScope.of(()), None, None)

    def retire(self, views: Collection[str], now: datetime) -> Alerted:
        """After a reload: resolve the alerts of feature views no longer configured."""
        settings = self._settings

        def transition(records: Mapping[str, AlertRecord], _silences: Silences) -> Transition:
            return retire(records, views, settings.alerting, now)

        return self._step("reload", now, AlertScope(), transition, None)

    def next_flush(self) -> datetime | None:
        """When `tick` next has something to do; None when no group waits."""
        return self._store.next_group_flush()

    # -- one step --------------------------------------------------------------------------------

    def _stages(self, tx: AlertTransaction, now: datetime, step: Step | None) -> Alerted:
        """One step over one transaction: the pipeline, stage by stage."""
        s = self._settings
        resent: tuple[Routed, ...] = ()
        if step is None:  # the grouper's timer: the due groups, no lifecycle
            changed, before = None, stages.read_groups(tx.due_groups(now))
        else:
            silences = stages.with_api_silences(s.silences, tx.silences)  # silence
            changed = step(stages.read_records(tx.records), silences)  # lifecycle, inhibition
            before = stages.read_groups(tx.groups(stages.touched(s.tree, changed)))  # its groups
            quoted = _quoting(changed.records, tx)
            resent = stages.resends(before, quoted, s.resend, now, silences)  # Alertmanager's
        routed = s.tree.routed(() if changed is None else changed.events)  # route
        grouped = group(before, (*resent, *routed), now, s.external_url)  # group; own events last
        tx.write(stages.change_of(tx.records, changed, grouped))  # outbox (deliver: `_step`)
        done = changed or stages.NOTHING
        return Alerted(grouped.notifications, done.suppressed, done.inhibited)

    def _step(
        self, what: str, now: datetime, scope: AlertScope, step: Step | None, run_id: str | None
    ) -> Alerted:
        started, cpu = time.monotonic(), time.thread_time()
        with self._lock:
            if self._offline and not self._write_back(now):
                alerted: Alerted | None = self._in_memory(now, scope, step)
            else:
                try:
                    alerted = self._in_store(now, scope, step, run_id)
                except AlertStoreError as exc:
                    if self._standby is None:
                        raise
                    log.error("alerting %s from memory: the state database failed: %s", what, exc)
                    self._offline = True
                    alerted = self._in_memory(now, scope, step)
        if alerted is None:
            return Alerted(skipped=True)
        stages.log_step(what, alerted, time.monotonic() - started, time.thread_time() - cpu)
        if alerted.notifications and self._wake is not None:
            self._wake()
        return alerted

    def _in_store(
        self, now: datetime, scope: AlertScope, step: Step | None, run_id: str | None
    ) -> Alerted | None:
        if not self._memory.complete:
            scope = AlertScope()  # the first step reads everything, for memory to start from
        with self._store.alert_transaction(scope, now, run_id) as tx:
            if tx is None:
                return None
            recording = Recording(tx, scope)
            alerted = self._stages(recording, now, step)
        self._memory.take(recording)  # committed
        return alerted

    def _in_memory(self, now: datetime, scope: AlertScope, step: Step | None) -> Alerted:
        """The step over the alert state of memory; its notifications go to the standby."""
        if self._standby is None:  # pragma: no cover - _step only comes here with one
            raise RuntimeError("alerting from memory needs a standby")
        recording = self._memory.transaction(scope)
        alerted = self._stages(recording, now, step)
        self._memory.take(recording)
        rows = () if recording.change is None else recording.change.outbox
        for notification, row in zip(alerted.notifications, rows, strict=True):
            self._standby.add(notification, row)
        return alerted

    def _write_back(self, now: datetime) -> bool:
        """Give the store the alert state of memory and the standby's notifications; False
        (nothing changed) while it cannot take them."""
        if self._standby is None:  # pragma: no cover - offline only with a standby
            return True
        known = self._memory.state

        def write(rows: tuple[NewNotification, ...]) -> None:
            with self._store.alert_transaction(AlertScope(), now) as tx:
                if tx is not None:
                    tx.groups(())  # every group: memory's replace them
                    tx.write(AlertChange(known.records, known.groups, rows))

        try:
            handed = self._standby.hand_over(write)
        except AlertStoreError as exc:
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


def _quoting(
    records: Mapping[str, AlertRecord], tx: AlertTransaction
) -> Callable[[Collection[str]], Mapping[str, AlertRecord]]:
    """The records a resend quotes: the step's own, else read from the store."""

    def quoted(fingerprints: Collection[str]) -> Mapping[str, AlertRecord]:
        missing = [fp for fp in fingerprints if fp not in records]
        found = stages.read_records(tx.others(missing)) if missing else {}
        return {**found, **{fp: records[fp] for fp in fingerprints if fp in records}}

    return quoted
