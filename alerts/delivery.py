"""The outbox worker: a thread that takes due notifications from the state database's outbox,
hands each to its receiver's `Sender`, and records the outcome.

    delivery = Delivery.from_config(store, config.receivers, observer=metrics.notified)
    delivery.start()
    ...
    delivery.stop(timeout=10)   # also closes the HTTP client it created

Outcomes, per attempt:
- accepted: the row is `delivered`.
- `DeliveryFailed` retryable: the row stays pending until a backoff delay has passed
  (exponential from `RetryPolicy.base` up to `cap`, jittered, and at least the receiver's
  `Retry-After`); a retry that would fall after `created_at + deadline` is not made: the row is
  `dead` with the reason. The policy is the receiver's own (`retry:` of the receiver in
  config.yaml), else `alerting.retry`.
- `DeliveryFailed` permanent, an unknown receiver or an unreadable notification: `dead` at once.

Rows are claimed for a lease (`AlertStore.claim_outbox`), so replicas sharing a PostgreSQL
database never send one row twice, and a worker that dies mid-send leaves its row to be sent
again when the lease ends (at least once: PagerDuty's dedup key and Alertmanager's labels make
the repeat harmless; Slack and webhooks may show it twice). After a restart, pending rows are
delivered. Reasons stored and logged are `DeliveryFailed` messages, which senders keep free of
secrets, scrubbed once more here of every receiver's secrets. Each outcome is reported to an
`OutcomeObserver` (the Prometheus counter `featmon_notifications_total{receiver,outcome}`).

While the state database is down the alert pipeline cannot write the outbox: it hands its
notifications to the `Standby` (`alerts.standby`), which the worker sends from memory with the same retry policy
(before it looks at the outbox, which then fails). When the database is back the pipeline writes
what the standby holds into the outbox (`Standby.hand_over`): the notifications sent as
`delivered`, so they are not sent again, and the others `pending`, for the worker to send.
"""

from __future__ import annotations

import enum
import logging
import random
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Protocol

from alerts.abc import AlertStore, Sender
from alerts.codec import CodecError, notification_from_json
from alerts.config import Receiver, RetrySettings
from alerts.errors import AlertStoreError, DeliveryFailed
from alerts.senders import build_sender, new_client
from alerts.standby import Standby, Waiting
from alerts.stored import OutboxRow, thaw
from checks.secrets import NO_SECRETS, Secrets

log = logging.getLogger(__name__)


class DeliveryOutcome(enum.Enum):
    DELIVERED = "delivered"
    RETRIED = "retried"  # failed, and will be tried again
    DEAD = "dead"  # given up


class OutcomeObserver(Protocol):
    """Told of every attempt's outcome; must be quick and must not raise."""

    def __call__(self, receiver: str, outcome: DeliveryOutcome) -> None: ...


def _ignore(receiver: str, outcome: DeliveryOutcome) -> None:
    """The default observer: no metrics."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff after a retryable failure: attempt n waits `base * 2**(n-1)`, at most `cap`,
    less up to `jitter` of it at random (so replicas and groups spread out), and never less
    than the receiver's `Retry-After`. No retry is made after `deadline` from enqueueing."""

    base: timedelta = timedelta(seconds=5)
    cap: timedelta = timedelta(minutes=5)
    deadline: timedelta = timedelta(hours=1)
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.base <= timedelta(0) or self.cap < self.base or self.deadline < self.base:
            raise ValueError(
                f"expected 0 < base <= cap and base <= deadline, found base {self.base}, "
                f"cap {self.cap} and deadline {self.deadline}"
            )
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"expected a jitter from 0 to 1, found {self.jitter}")

    @classmethod
    def of(cls, settings: RetrySettings) -> RetryPolicy:
        """The policy of `retry:` in config.yaml (a receiver's own, or `alerting.retry`)."""
        return cls(base=settings.base, cap=settings.cap, deadline=settings.deadline)

    def delay(self, attempts: int, retry_after: float | None, rng: random.Random) -> timedelta:
        exponent = min(max(attempts - 1, 0), 32)
        full = min(self.cap.total_seconds(), self.base.total_seconds() * 2**exponent)
        seconds = full * (1 - self.jitter * rng.random())
        if retry_after is not None:
            seconds = max(seconds, retry_after)
        return timedelta(seconds=seconds)


@dataclass(frozen=True)
class DeliverySettings:
    retry: RetryPolicy = RetryPolicy()  # of every receiver without a policy in `retries`
    retries: Mapping[str, RetryPolicy] = field(default_factory=lambda: MappingProxyType({}))
    lease: timedelta = timedelta(minutes=5)  # longer than any send may take
    poll_interval: timedelta = timedelta(seconds=1)  # idle wait between looks at the outbox
    batch: int = 10  # rows claimed at once

    def __post_init__(self) -> None:
        if self.lease <= timedelta(0) or self.poll_interval <= timedelta(0) or self.batch < 1:
            raise ValueError("expected a positive lease, poll interval and batch")


class Delivery:
    """The worker over one state database and the senders of the configured receivers.
    `on_stop` is called once the thread has ended (to close what the senders share)."""

    def __init__(
        self,
        state: AlertStore,
        senders: Mapping[str, Sender],
        settings: DeliverySettings | None = None,
        *,
        observer: OutcomeObserver = _ignore,
        clock: Callable[[], datetime] = _utcnow,
        rng: random.Random | None = None,
        on_stop: Callable[[], None] | None = None,
        secrets: Secrets = NO_SECRETS,
        standby: Standby | None = None,
    ) -> None:
        self._state = state
        self._secrets = secrets  # scrubbed from every reason stored and logged
        self._senders = dict(senders)
        self._settings = settings or DeliverySettings()
        self._observer = observer
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._on_stop = on_stop
        self._standby = standby
        self._stopping = threading.Event()
        self._wakeup = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_config(
        cls,
        state: AlertStore,
        receivers: Mapping[str, Receiver],
        settings: DeliverySettings | None = None,
        *,
        retry: RetrySettings | None = None,
        observer: OutcomeObserver = _ignore,
        standby: Standby | None = None,
    ) -> Delivery:
        """The worker with a real sender per receiver, sharing one HTTP client that the worker
        owns: `stop()` closes it. `retry` (`alerting.retry`) is the policy of every receiver
        without a `retry` of its own; unset, that of `settings`."""
        client = new_client()
        senders = {name: build_sender(name, r, client) for name, r in receivers.items()}
        base = settings or DeliverySettings()
        default = base.retry if retry is None else RetryPolicy.of(retry)
        retries = {
            name: default if r.retry is None else RetryPolicy.of(r.retry)
            for name, r in receivers.items()
        }
        settings = replace(base, retry=default, retries=MappingProxyType(retries))
        return cls(
            state,
            senders,
            settings,
            observer=observer,
            on_stop=client.close,
            secrets=Secrets.within(receivers),
            standby=standby,
        )

    # -- the thread ----------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the delivery worker was started already")
        self._thread = threading.Thread(target=self._loop, name="featmon-delivery", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look at the outbox now (notifications were just enqueued)."""
        self._wakeup.set()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop after the send in progress, hand back claimed rows not yet attempted, and close
        the senders' client. False when the thread did not end within `timeout` (a send still
        hangs); its row is then sent again by whoever claims it after the lease."""
        self._stopping.set()
        self._wakeup.set()
        ended = True
        if self._thread is not None:
            self._thread.join(timeout)
            ended = not self._thread.is_alive()
        if ended and self._on_stop is not None:
            self._on_stop()
            self._on_stop = None
        return ended

    def _loop(self) -> None:
        names = ", ".join(sorted(self._senders))
        log.info(
            "delivery worker started for %s", f"receivers {names}" if names else "no receivers"
        )
        idle = self._settings.poll_interval.total_seconds()
        while not self._stopping.is_set():
            if self._standby is not None:
                self._standby.send_due(self._attempt_from_memory, self._clock())
            try:
                busy = self.run_once() == self._settings.batch
            except AlertStoreError as exc:
                log.error("delivery worker: the outbox is unavailable: %s", exc)
                busy = False
            except Exception:  # the worker's boundary: a bug is logged, and the worker goes on
                log.exception("delivery worker: a batch failed")
                busy = False
            if not busy:
                self._wakeup.wait(idle)
                self._wakeup.clear()
        log.info("delivery worker stopped")

    # -- one batch -------------------------------------------------------------------------------

    def run_once(self) -> int:
        """Claim the due rows (one batch) and attempt each; returns how many were claimed.
        Raises `AlertStoreError` when the outbox cannot be read."""
        token = uuid.uuid4().hex
        claimed = self._state.claim_outbox(
            self._clock(), self._settings.lease, token, self._settings.batch
        )
        for row in claimed:
            if self._stopping.is_set():
                self._state.outbox_release(row.id, token, self._clock())
                continue
            try:
                self._attempt(row, token)
            except AlertStoreError as exc:  # the row stays claimed; it is due again after the lease
                log.error("delivery worker: outbox row %d: %s", row.id, exc)
        return len(claimed)

    def _attempt(self, row: OutboxRow, token: str) -> None:
        sender = self._senders.get(row.receiver)
        if sender is None:
            self._dead(row, token, f"receiver {row.receiver!r} is not configured")
            return
        try:
            notification = notification_from_json(thaw(row.notification))
        except CodecError as exc:
            self._dead(row, token, f"the stored notification does not read: {exc}")
            return
        try:
            sender.send(notification)
        except DeliveryFailed as failed:
            if failed.permanent:
                self._dead(row, token, str(failed))
            else:
                self._retry(row, token, str(failed), failed.retry_after)
            return
        except Exception as exc:  # noqa: BLE001 - a sender bug must not stop every delivery
            # Only the type: a message might quote a secret the sender holds.
            reason = f"receiver {row.receiver!r}: the sender failed ({type(exc).__name__})"
            log.error("outbox row %d: %s", row.id, reason)
            self._retry(row, token, reason, None)
            return
        if self._state.outbox_delivered(row.id, token, self._clock()):
            log.info(
                "outbox row %d delivered to receiver %r on attempt %d",
                row.id,
                row.receiver,
                row.attempts,
            )
            self._report(row.receiver, DeliveryOutcome.DELIVERED)
        else:
            log.warning("outbox row %d was delivered after its claim lapsed", row.id)

    def _attempt_from_memory(self, waiting: Waiting) -> datetime | None:
        """One attempt at a notification the outbox could not take; the next attempt's time,
        or None when it was delivered or given up."""
        receiver = waiting.row.receiver
        sender = self._senders.get(receiver)
        if sender is None:
            self._memory_dead(waiting, f"receiver {receiver!r} is not configured")
            return None
        try:
            sender.send(waiting.notification)
        except DeliveryFailed as failed:
            if failed.permanent:
                self._memory_dead(waiting, str(failed))
                return None
            return self._memory_retry(waiting, str(failed), failed.retry_after)
        except Exception as exc:  # noqa: BLE001 - a sender bug must not stop every delivery
            reason = f"receiver {receiver!r}: the sender failed ({type(exc).__name__})"
            return self._memory_retry(waiting, reason, None)
        waiting.delivered_at = self._clock()
        log.info(
            "notification %s delivered to receiver %r from memory on attempt %d (the outbox is "
            "unavailable; it is written there delivered when the state database is back)",
            waiting.row.dedup_key,
            receiver,
            waiting.attempts,
        )
        self._report(receiver, DeliveryOutcome.DELIVERED)
        return None

    def _memory_retry(
        self, waiting: Waiting, reason: str, retry_after: float | None
    ) -> datetime | None:
        now = self._clock()
        delay = self._settings.retry.delay(waiting.attempts, retry_after, self._rng)
        if now + delay > waiting.row.created_at + self._settings.retry.deadline:
            self._memory_dead(waiting, f"gave up after {waiting.attempts} attempts: {reason}")
            return None
        log.info(
            "notification %s to receiver %r: attempt %d from memory failed (%s); next in %.1f s",
            waiting.row.dedup_key,
            waiting.row.receiver,
            waiting.attempts,
            reason,
            delay.total_seconds(),
        )
        self._report(waiting.row.receiver, DeliveryOutcome.RETRIED)
        return now + delay

    def _memory_dead(self, waiting: Waiting, reason: str) -> None:
        waiting.dead = True
        log.error(
            "notification %s to receiver %r, held in memory while the outbox is unavailable, "
            "is dead after %d attempts: %s",
            waiting.row.dedup_key,
            waiting.row.receiver,
            waiting.attempts,
            reason,
        )
        self._report(waiting.row.receiver, DeliveryOutcome.DEAD)

    def _retry(self, row: OutboxRow, token: str, reason: str, retry_after: float | None) -> None:
        reason = self._secrets.scrub(reason)
        now = self._clock()
        policy = self._settings.retries.get(row.receiver, self._settings.retry)
        delay = policy.delay(row.attempts, retry_after, self._rng)
        deadline = row.created_at + policy.deadline
        if now + delay > deadline:
            self._dead(
                row,
                token,
                f"gave up after {row.attempts} attempts in {_span(now - row.created_at)}: {reason}",
            )
            return
        if self._state.outbox_retry(row.id, token, now + delay, reason):
            log.info(
                "outbox row %d to receiver %r: attempt %d failed (%s); next in %.1f s",
                row.id,
                row.receiver,
                row.attempts,
                reason,
                delay.total_seconds(),
            )
            self._report(row.receiver, DeliveryOutcome.RETRIED)

    def _dead(self, row: OutboxRow, token: str, reason: str) -> None:
        reason = self._secrets.scrub(reason)
        if self._state.outbox_dead(row.id, token, reason):
            log.error(
                "outbox row %d to receiver %r is dead after %d attempts: %s",
                row.id,
                row.receiver,
                row.attempts,
                reason,
            )
            self._report(row.receiver, DeliveryOutcome.DEAD)

    def _report(self, receiver: str, outcome: DeliveryOutcome) -> None:
        try:
            self._observer(receiver, outcome)
        except Exception:  # a metrics bug must not stop deliveries
            log.exception("the delivery outcome observer failed")


def _span(elapsed: timedelta) -> str:
    seconds = max(elapsed.total_seconds(), 0.0)
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
