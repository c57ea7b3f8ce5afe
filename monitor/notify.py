"""Alerting for one loaded configuration: the pipeline (lifecycle, routing, grouping, outbox)
and the delivery worker, started and stopped together. The daemon keeps one per configuration
generation; `featmon check` does not alert (it is a gate with an exit code)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from datetime import datetime

from checks.result import RunResult
from monitor.alerting import Alerting, AlertingSettings
from monitor.app import App
from monitor.delivery import Delivery, DeliveryOutcome

log = logging.getLogger(__name__)


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
        self.delivery = Delivery.from_config(
            app.state, config.receivers, retry=config.alerting.retry, observer=report
        )
        self.alerting = Alerting(
            app.state, AlertingSettings.from_config(config), wake=self.delivery.wake
        )

    def start(self) -> None:
        self.delivery.start()

    def stop(self, timeout: float = 10.0) -> None:
        if not self.delivery.stop(timeout):
            log.warning("the delivery worker did not stop within %.0f s", timeout)

    def after_run(self, run: RunResult, now: datetime) -> None:
        """Alert on one recorded run; failures are logged (the run is kept either way)."""
        try:
            self.alerting.after_run(run, now, self.report_url(run))
        except Exception:  # the per-run boundary: alerting must not stop the schedule
            log.exception("alerting on run %s failed", run.run_id)

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

    def report_url(self, run: RunResult) -> str | None:
        if not self._base_url:
            return None
        return f"{self._base_url.rstrip('/')}/{run.run_id}"
