"""Alerting for one loaded configuration: the pipeline (`alerts.pipeline`: lifecycle, routing,
grouping, outbox) and the delivery worker (`alerts.delivery`) over the state database (the
`AlertStore` they need), started and stopped together. The daemon keeps one per configuration
generation; `featmon check` does not alert (it is a gate with an exit code).

The state database is watched as a check of its own, `featmon.state_database` (P1, feature view
`featmon`, store `state`): once runs could not be written to it for `state.outage_alert_after`,
every alert tick is a failing run of that check (so it fires after `alerting.for_runs` ticks and
is routed like any alert); once it is back, passing runs until the alert resolves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from datetime import datetime, timedelta

from alerts.delivery import Delivery, DeliveryOutcome
from alerts.pipeline import Alerting, AlertingSettings
from alerts.silences import Silences
from alerts.standby import Standby
from checks.result import CheckResult, ErrorDetails, RunResult, Status, Threshold
from monitor.app import App
from monitor.config import Config
from monitor.daemon.recorder import StateHealth
from monitor.http.links import ReportLinks
from monitor.runs.run import new_run_id

log = logging.getLogger(__name__)

STATE_CHECK = "featmon.state_database"


class AlertRuntime:
    """Alerting and delivery over the app's state database. Needs a state database: without
    one nothing is alerted (logged once)."""

    def __init__(self, app: App, on_outcome: Callable[[str, str], None]) -> None:
        if app.state is None:
            raise ValueError("alerting needs the state database")
        config = app.loaded.config

        def report(receiver: str, outcome: DeliveryOutcome) -> None:
            on_outcome(receiver, outcome.value)

        self._base_url = config.reports.base_url
        self._links = ReportLinks.from_config(config.reports)
        self._standby = Standby()  # what the outbox cannot take while the database is down
        self.delivery = Delivery.from_config(
            app.state,
            config.receivers,
            retry=config.alerting.retry,
            observer=report,
            standby=self._standby,
        )
        self.alerting = Alerting(
            app.state, alerting_settings(config), self.delivery.wake, self._standby
        )
        self._resolve_after = config.alerting.resolve_after_runs
        self._outage = False  # the state database alert is failing, or not yet resolved
        self._passes = 0

    def start(self) -> None:
        self.delivery.start()

    def adopt(self, old: AlertRuntime) -> None:
        """After a reload: take over what `old` holds in memory while the state database is
        down (the alert state, the notifications not yet in the outbox, the outage alert)."""
        self.alerting.adopt(old.alerting)
        old._standby.move_to(self._standby)
        self._outage, self._passes = old._outage, old._passes
        if len(self._standby):
            self.delivery.wake()

    def stop(self, timeout: float = 10.0) -> None:
        if not self.delivery.stop(timeout):
            log.warning("the delivery worker did not stop within %.0f s", timeout)

    def after_run(self, run: RunResult, now: datetime) -> None:
        """Alert on one recorded run; failures are logged (the run is kept either way)."""
        try:
            self.alerting.after_run(run, now, self.report_url(run, now))
        except Exception:  # the per-run boundary: alerting must not stop the schedule
            log.exception("alerting on run %s failed", run.run_id)

    def watch_state(self, health: StateHealth, now: datetime, after: timedelta) -> None:
        """One run of the `featmon.state_database` check: failing when runs could not be
        written for `after`; passing after that, until the alert resolves; else none."""
        down = not health.writable and health.since is not None and now - health.since >= after
        if down:
            self._outage, self._passes = True, 0
        elif self._outage:
            self._passes += 1
            self._outage = self._passes < self._resolve_after
        else:
            return
        run = state_run(health, now)
        try:
            self.alerting.after_run(run, now, None)
        except Exception:  # the per-run boundary: alerting must not stop the schedule
            log.exception("alerting on the state database failed")

    def tick(self, now: datetime) -> None:
        try:
            self.alerting.tick(now)
        except Exception:
            log.exception("flushing alert groups failed")

    def retire(self, views: Collection[str], now: datetime) -> None:
        try:
            self.alerting.retire(views, now)
        except Exception:
            log.exception("resolving the alerts of removed views failed")

    def report_url(self, run: RunResult, now: datetime) -> str | None:
        """The link to the run's report under `reports.base_url`: signed when
        `reports.link_key` is set (it opens without the bearer token until `link_ttl` after
        `now`), plain otherwise; None without a base URL."""
        if not self._base_url:
            return None
        if self._links is not None:
            return self._links.url(self._base_url, run.run_id, now)
        return f"{self._base_url.rstrip('/')}/{run.run_id}"


def alerting_settings(config: Config) -> AlertingSettings:
    """The pipeline's settings from config.yaml."""
    return AlertingSettings.of(
        config.alerting,
        config.route,
        config.receivers,
        Silences(config.silences, config.maintenance_windows),
        config.reports.base_url,
    )


def state_run(health: StateHealth, now: datetime) -> RunResult:
    """A run of the `featmon.state_database` check at `now`: failing while `health` is not
    writable, its value the seconds since the last run could be written."""
    down = 0.0 if health.writable or health.since is None else (now - health.since).total_seconds()
    reason = "the state database takes runs" if health.writable else health.describe()
    result = CheckResult(
        check=STATE_CHECK,
        kind="state_database",
        feature_view="featmon",
        feature=None,
        store="state",
        target="state",
        status=Status.PASS if health.writable else Status.FAIL,
        severity="P1",
        value=down,
        threshold=Threshold(direction="max", fail=0.0, warn=None, unit="seconds"),
        sample_size=None,
        details=ErrorDetails(reason),
    )
    return RunResult(new_run_id(now), now, now, now, (result,))
