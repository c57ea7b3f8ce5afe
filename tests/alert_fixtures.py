"""Check results and runs for the tests of the alert pipeline: one freshness check, failing at
7200 s against a 3600 s limit or passing at 60 s."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from alerts.abc import AlertStore
from alerts.lifecycle import AlertingConfig
from alerts.pipeline import Alerted, Alerting, AlertingSettings
from alerts.routing import RootRouteConfig, RoutingTree
from checks.result import CheckResult, FreshnessDetails, RunResult, Status, Threshold

AT = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
STEP = timedelta(minutes=5)
FRESH = "user_stats.freshness@online"


def result(status: Status, check: str = FRESH, view: str = "user_stats") -> CheckResult:
    """The P1 freshness check `check` of `view` with `status`."""
    value = 7200.0 if status is Status.FAIL else 60.0
    return CheckResult(
        check=check,
        kind="freshness",
        feature_view=view,
        feature=None,
        store="redis_prod",
        target="online",
        status=status,
        severity="P1",
        value=value,
        threshold=Threshold("max", 3600.0, None, "seconds"),
        sample_size=100,
        details=FreshnessDetails(p50=value, p90=value, p99=value, max=value),
    )


def a_run(index: int, *results: CheckResult, at: datetime = AT) -> RunResult:
    """The `index`-th run of `results`, `STEP`s after `at`."""
    scheduled = at + index * STEP
    return RunResult(
        f"run-{index}-{uuid.uuid4().hex[:6]}", scheduled, scheduled, scheduled, results
    )


def view_run(view: str, at: datetime, status: Status = Status.FAIL) -> RunResult:
    """A run of `view` at `at` holding only its freshness check, with `status`."""
    check = result(status, f"{view}.freshness@online", view)
    return RunResult(f"run-{uuid.uuid4().hex[:8]}", at, at, at, (check,))


def alert_now(state: AlertStore, status: Status = Status.FAIL) -> Alerted:
    """One alerting step over `state`, now, of a run whose freshness check has `status`: every
    alert goes to the webhook receiver `team`, with no group wait."""
    now = datetime.now(UTC)
    route = RootRouteConfig.model_validate({"receiver": "team", "group_wait": "0s"})
    tree = RoutingTree.from_config(route, {"team": "webhook"})
    alerting = Alerting(state, AlertingSettings(alerting=AlertingConfig(), tree=tree))
    return alerting.after_run(RunResult("run-1", now, now, now, (result(status),)), now)
