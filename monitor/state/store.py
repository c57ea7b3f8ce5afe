"""`StateStore`: the state database's API. It owns its engine (`close()` disposes of it),
applies migrations (`migrate()`), records runs and answers the history, status and baseline
questions of the daemon, the HTTP API, the Prometheus collector and the anomaly checks.

Every method is safe to call from several threads (each call takes its own connection); times
go in timezone-aware (naive ones raise `ValueError`) and come out in UTC; any database failure
raises `StateError`. Lists come newest first: by scheduled time, then run id.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from alerts.stored import AlertScope
from checks.result import JSON, RunResult, Status, subject_key
from monitor.state import claims, decoding, outbox, rows, silences, upserts
from monitor.state.engine import Database
from monitor.state.errors import StateError
from monitor.state.migrations import MIGRATIONS, Migration, current_version, migrate
from monitor.state.schema import latest_results, results, runs, schema_baselines
from monitor.state.schema import outbox as outbox_table
from monitor.state.values import (
    AlertDocuments,
    Baseline,
    ClaimOutcome,
    HistoryPoint,
    OutboxRow,
    OutboxState,
    RunClaim,
    StoredResult,
    StoredRun,
    StoredSilence,
)

log = logging.getLogger(__name__)

MAX_LIMIT = 10_000  # the most rows one query returns
_PRUNE_SCAN = 1_000  # the most runs one prune batch looks at


_IS_LATEST = sa.and_(
    latest_results.c.run_id == results.c.run_id, latest_results.c.seq == results.c.seq
)
"""A result row that is its check's newest (the join of `results` with `latest_results`)."""


class StateStore:
    """The state database at `url` (SQLAlchemy: `sqlite:///path.db` or
    `postgresql+psycopg://...`). Creating one opens no connection; call `migrate()` before
    anything else. `migrations` is for tests that add a version; leave it to the default."""

    def __init__(self, url: str, *, migrations: Sequence[Migration] = MIGRATIONS) -> None:
        self._db = Database(url)
        self._migrations = tuple(migrations)

    @property
    def database(self) -> str:
        """The URL with its password masked, for logs and messages."""
        return self._db.name

    def close(self) -> None:
        """Dispose of the engine this store created."""
        self._db.dispose()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema -------------------------------------------------------------------------------

    def migrate(self) -> list[int]:
        """Bring the schema to the newest known version; returns the versions applied.

        Idempotent, and safe when several processes start at once (they take turns under a
        lock). Raises `SchemaTooNew` if a newer featmon already migrated the database."""
        started = time.monotonic()
        with self._db.write("migration") as conn:
            applied = migrate(conn, self._migrations, self._db.name)
        log.info(
            "state database %s: schema at version %d (%s) in %.0f ms",
            self._db.name,
            len(self._migrations),
            f"applied {applied}" if applied else "nothing to apply",
            (time.monotonic() - started) * 1000,
        )
        return applied

    def version(self) -> int:
        """The schema version of the database; 0 before the first migration."""
        with self._db.read("reading the schema version") as conn:
            return current_version(conn)

    # -- runs and results ---------------------------------------------------------------------

    def record_run(self, run: RunResult, claim: tuple[str, str] | None = None) -> bool:
        """Store a run and all its results, in one transaction. Idempotent on `run.run_id`: a run
        already recorded is left as it was (the first record wins).

        With `claim` (subject, holder), the run's claim is finished in the same
        transaction, and nothing is recorded (False) when the claim is no longer the holder's:
        a replica that took it over records the run instead, so a run is recorded once even
        when its first holder dies between recording and finishing."""
        row = rows.run_row(run, recorded_at=datetime.now(UTC))
        started = time.monotonic()
        with self._db.write(f"recording run {run.run_id}") as conn:
            if claim is not None:
                view, holder = claim
                now = datetime.now(UTC)
                if not claims.finish(conn, view, run.scheduled_at, holder, now):
                    return False
            inserted = conn.execute(upserts.RUN, row).first() is not None
            if inserted and run.results:
                conn.execute(sa.insert(results), rows.result_rows(run))
                conn.execute(upserts.LATEST, rows.latest_rows(run))
        log.info(
            "state database %s: %s run %s (%d results) in %.0f ms",
            self._db.name,
            "recorded" if inserted else "already had",
            run.run_id,
            len(run.results),
            (time.monotonic() - started) * 1000,
        )
        return True

    def run(self, run_id: str) -> StoredRun | None:
        """The recorded run `run_id`, if any."""
        query = sa.select(runs).where(runs.c.run_id == run_id)
        with self._db.read(f"reading run {run_id}") as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else rows.to_run(row)

    def runs(self, limit: int = 50, since: datetime | None = None) -> list[StoredRun]:
        """Recorded runs scheduled at or after `since`, newest first."""
        query = sa.select(runs)
        if since is not None:
            query = query.where(runs.c.scheduled_at >= rows.aware(since, "since"))
        query = query.order_by(runs.c.scheduled_at.desc(), runs.c.run_id.desc())
        with self._db.read("reading runs") as conn:
            found = conn.execute(query.limit(_limit(limit))).mappings().all()
        return [rows.to_run(row) for row in found]

    def results(
        self,
        view: str | None = None,
        check: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        status: Status | None = None,
        limit: int = 100,
        run_id: str | None = None,
        model: str | None = None,
    ) -> list[StoredResult]:
        """Results matching every filter given, newest run first and in declaration order
        within a run. `since` is inclusive and `until` exclusive, on the scheduled time.
        `view` and `model` each name one subject: a view's results, or a model's."""
        conditions: list[sa.ColumnElement[bool]] = []
        if view is not None:
            conditions.append(results.c.feature_view == view)
        if model is not None:
            conditions.append(results.c.model == model)
        if check is not None:
            conditions.append(results.c.check_id == check)
        if since is not None:
            conditions.append(results.c.scheduled_at >= rows.aware(since, "since"))
        if until is not None:
            conditions.append(results.c.scheduled_at < rows.aware(until, "until"))
        if status is not None:
            conditions.append(results.c.status == status.value)
        if run_id is not None:
            conditions.append(results.c.run_id == run_id)
        query = (
            sa.select(results)
            .where(sa.true(), *conditions)
            .order_by(results.c.scheduled_at.desc(), results.c.run_id.desc(), results.c.seq)
            .limit(_limit(limit))
        )
        with self._db.read("reading results") as conn:
            found = conn.execute(query).mappings().all()
        return [rows.to_result(row) for row in found]

    def recorded_run(self, run_id: str) -> RunResult | None:
        """The run `run_id` as it was recorded, every result in declaration order (what its
        report is rendered from); None when it was never recorded. A result that no longer
        reads as a `CheckResult` raises `StateError`."""
        with self._db.read(f"reading run {run_id}") as conn:
            row = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).mappings().first()
            if row is None:
                return None
            found = conn.execute(
                sa.select(results).where(results.c.run_id == run_id).order_by(results.c.seq)
            ).mappings()
            stored = [rows.to_result(r) for r in found]
        try:
            checked = tuple(decoding.check_result(result) for result in stored)
        except decoding.DecodeError as exc:
            raise StateError(self._db.name, f"reading run {run_id} failed: {exc}") from exc
        return RunResult(
            run_id=row["run_id"],
            scheduled_at=row["scheduled_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            results=checked,
        )

    def history(
        self, check: str, limit: int = 50, until: datetime | None = None
    ) -> list[HistoryPoint]:
        """The last `limit` values of one check, newest first (the input of anomaly checks);
        with `until`, those scheduled at or before it (a past run's report shows the history
        it had)."""
        conditions = [results.c.check_id == check]
        if until is not None:
            conditions.append(results.c.scheduled_at <= rows.aware(until, "until"))
        query = (
            sa.select(results.c.run_id, results.c.scheduled_at, results.c.value, results.c.status)
            .where(*conditions)
            .order_by(results.c.scheduled_at.desc(), results.c.run_id.desc(), results.c.seq)
            .limit(_limit(limit))
        )
        with self._db.read(f"reading the history of {check}") as conn:
            found = conn.execute(query).mappings().all()
        return [rows.to_point(row) for row in found]

    def history_near(
        self, check: str, times: Sequence[datetime], tolerance: timedelta
    ) -> list[HistoryPoint]:
        """The values of one check scheduled within `tolerance` of any of `times`, newest
        first: an anomaly check's earlier seasons, read in one query however long the days
        or weeks between them."""
        if not times:
            return []
        near = [
            results.c.scheduled_at.between(
                rows.aware(t - tolerance, "time"), rows.aware(t + tolerance, "time")
            )
            for t in times
        ]
        query = (
            sa.select(results.c.run_id, results.c.scheduled_at, results.c.value, results.c.status)
            .where(results.c.check_id == check, sa.or_(*near))
            .order_by(results.c.scheduled_at.desc(), results.c.run_id.desc(), results.c.seq)
        )
        with self._db.read(f"reading the seasons of {check}") as conn:
            found = conn.execute(query).mappings().all()
        return [rows.to_point(row) for row in found]

    def latest_by_check(self) -> list[StoredResult]:
        """The newest result of every check that has one, by check id: what Prometheus and the
        status API show. Reads one row per check, however long the history."""
        query = (
            sa.select(results).join(latest_results, _IS_LATEST).order_by(latest_results.c.check_id)
        )
        with self._db.read("reading the latest results") as conn:
            found = conn.execute(query).mappings().all()
        return [rows.to_result(row) for row in found]

    def last_run_by_subject(self) -> dict[str, datetime]:
        """The scheduled time of the newest recorded result of each feature view and model, by
        subject (a view's name, `model:<name>`): when the daemon starts, those without a
        recent run catch up. Reads one row per check."""
        query = (
            sa.select(
                results.c.feature_view, results.c.model, sa.func.max(latest_results.c.scheduled_at)
            )
            .join(latest_results, _IS_LATEST)
            .group_by(results.c.feature_view, results.c.model)
        )
        with self._db.read("reading the last run of each view and model") as conn:
            found = conn.execute(query).all()
        return {
            subject_key(view or None, model): at
            for view, model, at in found
            if isinstance(at, datetime)
        }

    # -- schema baselines ---------------------------------------------------------------------

    def baseline(self, view: str, store: str) -> Baseline | None:
        """The newest accepted schema of `view` on `store`, if one was ever saved."""
        query = (
            sa.select(schema_baselines)
            .where(schema_baselines.c.feature_view == view, schema_baselines.c.store == store)
            .order_by(schema_baselines.c.captured_at.desc(), schema_baselines.c.id.desc())
            .limit(1)
        )
        with self._db.read(f"reading the baseline of {view} on {store}") as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else rows.to_baseline(row)

    def save_baseline(self, baseline: Baseline) -> None:
        """Accept `baseline` as the schema of its view and store. Earlier baselines are kept
        (who accepted what, and when) but `baseline()` answers with the newest."""
        row = rows.baseline_row(baseline)
        with self._db.write(f"saving the baseline of {baseline.feature_view}") as conn:
            conn.execute(sa.insert(schema_baselines).values(row))
        log.info(
            "state database %s: saved the schema baseline of %s on %s (%d columns)",
            self._db.name,
            baseline.feature_view,
            baseline.store,
            len(baseline.columns),
        )

    # -- retention ----------------------------------------------------------------------------

    def prune(self, older_than: datetime, batch_rows: int = 10_000) -> int:
        """Delete every run scheduled before `older_than`, with its results; returns how many
        runs were deleted. Works oldest first in transactions of whole runs holding about
        `batch_rows` results each (one run more if a single run is larger), so that writers
        get the database between batches."""
        cutoff = rows.aware(older_than, "older_than")
        if batch_rows < 1:
            raise ValueError(f"expected batch_rows of 1 or more, found {batch_rows}")
        started = time.monotonic()
        deleted_runs = deleted_results = batches = 0
        while True:
            with self._db.write("pruning old runs") as conn:
                run_ids, result_count = self._prune_batch(conn, cutoff, batch_rows)
            if not run_ids:
                break
            deleted_runs += len(run_ids)
            deleted_results += result_count
            batches += 1
        log.info(
            "state database %s: pruned %d runs and %d results older than %s in %d batches, %.0f ms",
            self._db.name,
            deleted_runs,
            deleted_results,
            cutoff.astimezone(UTC).isoformat(),
            batches,
            (time.monotonic() - started) * 1000,
        )
        return deleted_runs

    def _prune_batch(
        self, conn: sa.Connection, cutoff: datetime, batch_rows: int
    ) -> tuple[list[str], int]:
        total = runs.c.n_pass + runs.c.n_warn + runs.c.n_fail + runs.c.n_error
        oldest = conn.execute(
            sa.select(runs.c.run_id, total)
            .where(runs.c.scheduled_at < cutoff)
            .order_by(runs.c.scheduled_at, runs.c.run_id)
            .limit(_PRUNE_SCAN)
        ).all()
        run_ids: list[str] = []
        budget = 0
        for run_id, size in oldest:
            if run_ids and budget + size > batch_rows:
                break
            run_ids.append(run_id)
            budget += size
        if not run_ids:
            return [], 0
        conn.execute(sa.delete(latest_results).where(latest_results.c.run_id.in_(run_ids)))
        deleted = conn.execute(sa.delete(results).where(results.c.run_id.in_(run_ids))).rowcount
        conn.execute(sa.delete(runs).where(runs.c.run_id.in_(run_ids)))
        return run_ids, deleted

    # -- alert state and the outbox -----------------------------------------------------------

    @contextlib.contextmanager
    def alert_transaction(
        self, scope: AlertScope, now: datetime, run_id: str | None = None
    ) -> Iterator[outbox.ScopedAlerts | None]:
        """One alerting step's transaction (`alerts.abc.AlertStore`): the part of the alert
        state `scope` names, read and locked (replicas take turns on a part), and the API
        silences in force at `now`; what the step writes is committed when the block ends, and
        nothing is when it raises. With `run_id`, a run already alerted gives None (nothing to
        do), and the run is marked alerted with the step's writes."""
        now = rows.aware(now, "now")
        with self._db.write("advancing the alert state") as conn:
            if run_id is not None and outbox.run_seen(conn, run_id):
                log.info("state database %s: run %s was alerted already", self._db.name, run_id)
                yield None
                return
            step = outbox.ScopedAlerts(conn, scope, now, silences.in_force(conn, now))
            yield step
            if run_id is not None:
                outbox.mark_run(conn, run_id, now)

    def alert_documents(self) -> AlertDocuments:
        """The alert records and groups as they are now (for the API and the report)."""
        with self._db.read("reading the alert state") as conn:
            return outbox.read_alerts(conn)

    def next_group_flush(self) -> datetime | None:
        """When the grouper next has something to send, if anything waits."""
        with self._db.read("reading the next group flush") as conn:
            return outbox.next_flush(conn)

    def claim_outbox(
        self, now: datetime, lease: timedelta, token: str, limit: int = 10
    ) -> list[OutboxRow]:
        """Claim up to `limit` rows due at `now` for `lease` under `token` (see
        `monitor.state.outbox`): no other claimer gets them until the lease ends."""
        now = rows.aware(now, "now")
        with self._db.write("claiming outbox rows") as conn:
            return outbox.claim(conn, now, lease, _limit(limit), token)

    def outbox_delivered(self, row_id: int, token: str, now: datetime) -> bool:
        """Mark a claimed row delivered; False when the claim was lost (its lease ended)."""
        values = {"state": OutboxState.DELIVERED.value, "delivered_at": rows.aware(now, "now")}
        with self._db.write(f"marking outbox row {row_id} delivered") as conn:
            return outbox.finish(conn, row_id, token, values | {"claim": None})

    def outbox_retry(self, row_id: int, token: str, at: datetime, error: str) -> bool:
        """Leave a claimed row pending until `at`, with the reason of the failed attempt."""
        values = {"next_attempt_at": rows.aware(at, "at"), "last_error": error, "claim": None}
        with self._db.write(f"rescheduling outbox row {row_id}") as conn:
            return outbox.finish(conn, row_id, token, values)

    def outbox_release(self, row_id: int, token: str, at: datetime) -> bool:
        """Hand back a claimed row that was not attempted: due at `at`, its attempt uncounted."""
        values = {
            "next_attempt_at": rows.aware(at, "at"),
            "attempts": outbox_table.c.attempts - 1,  # the claim counted it
            "claim": None,
        }
        with self._db.write(f"releasing outbox row {row_id}") as conn:
            return outbox.finish(conn, row_id, token, values)

    def outbox_dead(self, row_id: int, token: str, error: str) -> bool:
        """Give up on a claimed row, keeping the reason."""
        values = {"state": OutboxState.DEAD.value, "last_error": error, "claim": None}
        with self._db.write(f"marking outbox row {row_id} dead") as conn:
            return outbox.finish(conn, row_id, token, values)

    def outbox_rows(
        self, state: OutboxState | None = None, limit: int = 100, receiver: str | None = None
    ) -> list[OutboxRow]:
        """Outbox rows in the order they were enqueued, optionally of one state or receiver."""
        with self._db.read("reading the outbox") as conn:
            return outbox.rows(conn, state, _limit(limit), receiver)

    def prune_outbox(self, older_than: datetime) -> int:
        """Delete delivered and dead notifications enqueued before `older_than` (and the marks
        of runs alerted before it); returns how many notifications were deleted."""
        cutoff = rows.aware(older_than, "older_than")
        with self._db.write("pruning the outbox") as conn:
            deleted = outbox.prune(conn, cutoff)
        log.info("state database %s: pruned %d finished notifications", self._db.name, deleted)
        return deleted

    # -- silences created through the API ------------------------------------------------------

    def add_silence(
        self,
        silence_id: str,
        document: Mapping[str, JSON],
        window: tuple[datetime, datetime],
        now: datetime,
    ) -> StoredSilence:
        """Store a silence (`document`, validated by the caller, with `silence_id` in it) that
        mutes from `window[0]` until `window[1]`. Raises `StateError` if the id is taken."""
        starts_at, ends_at = (rows.aware(w, "window") for w in window)
        now = rows.aware(now, "now")
        with self._db.write(f"adding silence {silence_id}") as conn:
            silences.add(conn, silence_id, document, (starts_at, ends_at), now)
            added = silences.get(conn, silence_id)
        if added is None:  # pragma: no cover - read back in the transaction that wrote it
            raise RuntimeError(f"silence {silence_id} was not written")
        log.info(
            "state database %s: added silence %s (%s to %s)",
            self._db.name,
            silence_id,
            starts_at.isoformat(),
            ends_at.isoformat(),
        )
        return added

    def silences(self, now: datetime, ended_since: datetime | None = None) -> list[StoredSilence]:
        """Active and pending silences at `now`, and with `ended_since` those that ended (or
        were expired) since then; soonest start first."""
        now = rows.aware(now, "now")
        since = None if ended_since is None else rows.aware(ended_since, "ended_since")
        with self._db.read("reading silences") as conn:
            return silences.listed(conn, now, since)

    def silence(self, silence_id: str) -> StoredSilence | None:
        with self._db.read(f"reading silence {silence_id}") as conn:
            return silences.get(conn, silence_id)

    def expire_silence(self, silence_id: str, now: datetime) -> StoredSilence | None:
        """End a silence at `now` (one that has ended already is left as it was); None when
        there is no such silence."""
        now = rows.aware(now, "now")
        with self._db.write(f"expiring silence {silence_id}") as conn:
            expired = silences.expire(conn, silence_id, now)
            found = silences.get(conn, silence_id)
        if expired:
            log.info("state database %s: expired silence %s", self._db.name, silence_id)
        return found

    # -- run claims (replicas) -----------------------------------------------------------------

    def claim_run(
        self, view: str, scheduled_at: datetime, holder: str, now: datetime, lease: timedelta
    ) -> ClaimOutcome:
        """Claim the run of `view` (a subject: a view's name, or `model:<name>`) scheduled at
        `scheduled_at` for `holder` until `now + lease` (see `monitor.state.claims`): of all
        the replicas asking, exactly one is answered `WON`, or `TAKEN_OVER` when the claim it
        found was abandoned (lease ended, not finished)."""
        scheduled_at = rows.aware(scheduled_at, "scheduled_at")
        now = rows.aware(now, "now")
        with self._db.write(f"claiming the run of {view}") as conn:
            return claims.claim(conn, view, scheduled_at, holder, now, lease)

    def finish_run_claim(
        self, view: str, scheduled_at: datetime, holder: str, now: datetime
    ) -> bool:
        """Mark the claim done; False when `holder` no longer held it (it was taken over)."""
        scheduled_at = rows.aware(scheduled_at, "scheduled_at")
        with self._db.write(f"finishing the claim of {view}") as conn:
            return claims.finish(conn, view, scheduled_at, holder, rows.aware(now, "now"))

    def renew_run_claims(self, holder: str, now: datetime, lease: timedelta) -> int:
        """Extend the lease of every unfinished claim of `holder` to `now + lease`."""
        with self._db.write("renewing run claims") as conn:
            return claims.renew(conn, holder, rows.aware(now, "now"), lease)

    def abandoned_run_claims(self, now: datetime, limit: int = 100) -> list[RunClaim]:
        """Unfinished claims whose lease ended before `now` (their holder died or hangs)."""
        with self._db.read("reading abandoned run claims") as conn:
            return claims.abandoned(conn, rows.aware(now, "now"), _limit(limit))

    def lose_run_claim(self, view: str, scheduled_at: datetime, now: datetime) -> bool:
        """Declare an abandoned claim lost; True for the one caller that did."""
        scheduled_at = rows.aware(scheduled_at, "scheduled_at")
        with self._db.write(f"declaring a run of {view} lost") as conn:
            return claims.lose(conn, view, scheduled_at, rows.aware(now, "now"))

    def run_claims(self, view: str | None = None, since: datetime | None = None) -> list[RunClaim]:
        """Claims of runs scheduled at or after `since`, oldest first (tests, diagnosis)."""
        since = None if since is None else rows.aware(since, "since")
        with self._db.read("reading run claims") as conn:
            return claims.listed(conn, view, since)

    def prune_run_claims(self, older_than: datetime) -> int:
        """Delete the claims of runs scheduled before `older_than`; returns how many."""
        cutoff = rows.aware(older_than, "older_than")
        with self._db.write("pruning run claims") as conn:
            deleted = claims.prune(conn, cutoff)
        log.info("state database %s: pruned %d run claims", self._db.name, deleted)
        return deleted


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"expected a limit from 1 to {MAX_LIMIT}, found {limit}")
    return limit
