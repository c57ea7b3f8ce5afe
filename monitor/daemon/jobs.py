"""What the daemon schedules: one `Job` per feature view and per model with checks to run.

A job is named by its subject (`CheckResult.subject`: a view's name, or `model:<name>`; a view's
name holds no colon), under which its runs are scheduled (`monitor.daemon.scheduler.job_key`),
claimed, recorded, counted and alerted on. The daemon treats views and models alike: it knows
of a job its schedule, how many checks it plans, and how to run it once (`run_view` or
`run_model`: a `RunResult` with its own run id).

    jobs = jobs_of(loaded)                                  # subject -> Job
    run, probe_cpu = jobs["model:fraud"].run(app, scheduled_at, observer)
    plan = plan_jobs(schedules(old_jobs), schedules(jobs))  # what a reload changes
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from checks.result import RunResult
from checks.schedule import Schedule
from monitor.app import App
from monitor.daemon.observer import RunObserver
from monitor.daemon.scheduler import job_key, spelled
from monitor.loader import Loaded, LoadedModel, LoadedView
from monitor.runs.run import run_model, run_view

log = logging.getLogger(__name__)

BUFFER_RUNS_PER_JOB = 60  # the default of state.buffer_runs: an hour of runs every minute

RunJob = Callable[[App, datetime, RunObserver], tuple[RunResult, float]]
"""One run of a job at its scheduled time: the run, and the CPU seconds its probe took."""


@dataclass(frozen=True)
class Job:
    """One view or model the daemon runs on its schedule. `fields`: what the run's log line
    carries as fields of its own (`feature_view` or `model`: a JSON log is searched by them)."""

    subject: str
    schedule: Schedule
    checks: int
    run: RunJob = field(compare=False)
    fields: Mapping[str, str] = field(compare=False, default_factory=lambda: MappingProxyType({}))

    @property
    def key(self) -> str:
        """The scheduler's key of its runs."""
        return job_key(self.subject)


def view_job(view: LoadedView) -> Job:
    def run(app: App, scheduled_at: datetime, observer: RunObserver) -> tuple[RunResult, float]:
        return run_view(app, view, scheduled_at, observer)

    name = view.view.name
    fields = MappingProxyType({"feature_view": name})
    return Job(name, view.view.schedule, len(view.planned), run, fields)


def model_job(model: LoadedModel) -> Job:
    def run(app: App, scheduled_at: datetime, observer: RunObserver) -> tuple[RunResult, float]:
        return run_model(app, model, scheduled_at, observer)

    fields = MappingProxyType({"model": model.name})
    return Job(model.key, model.served.model.schedule, len(model.planned), run, fields)


def jobs_of(loaded: Loaded) -> dict[str, Job]:
    """Every view and model with checks to run, by subject (one without checks is not run)."""
    jobs = [view_job(v) for v in loaded.views if v.planned]
    jobs += [model_job(m) for m in loaded.models if m.planned]
    return {job.subject: job for job in jobs}


def subjects(loaded: Loaded) -> frozenset[str]:
    """Every view and model with checks to run: the alerts of any other are retired (a view or
    model whose every check is switched off is no longer evaluated, so its alerts would never
    resolve by a run)."""
    return frozenset(jobs_of(loaded))


def schedules(jobs: Mapping[str, Job]) -> dict[str, Schedule]:
    return {subject: job.schedule for subject, job in jobs.items()}


def buffer_capacity(loaded: Loaded, jobs: Mapping[str, Job]) -> int:
    """`state.buffer_runs`, or `BUFFER_RUNS_PER_JOB` runs per scheduled view and model."""
    configured = loaded.config.state.buffer_runs
    return configured or BUFFER_RUNS_PER_JOB * max(1, len(jobs))


@dataclass(frozen=True)
class JobPlan:
    """How the scheduled views and models change from one configuration to the next."""

    add: tuple[str, ...]
    remove: tuple[str, ...]
    reschedule: tuple[str, ...]


def plan_jobs(old: Mapping[str, Schedule], new: Mapping[str, Schedule]) -> JobPlan:
    """Subjects to add, to remove, and whose schedule changed (the rest keep their next run)."""
    return JobPlan(
        add=tuple(sorted(new.keys() - old.keys())),
        remove=tuple(sorted(old.keys() - new.keys())),
        reschedule=tuple(sorted(n for n in new.keys() & old.keys() if new[n] != old[n])),
    )


def log_run(job: Job, run: RunResult, took_ms: float, probe_cpu: float) -> None:
    """The one INFO line of a finished run (bench/daemon_load.py reads it)."""
    counts = run.counts()
    fields = {"run_id": run.run_id, **job.fields, "status": run.status.value}
    log.info(
        "run %s of %s: %s, %d checks (%d pass, %d warn, %d fail, %d error), "
        "scheduled at %s, started %.0f ms late, took %.0f ms (probe CPU %.1f ms)",
        run.run_id,
        spelled(job.subject),
        run.status.value,
        len(run.results),
        counts["pass"],
        counts["warn"],
        counts["fail"],
        counts["error"],
        run.scheduled_at.isoformat(),
        (run.started_at - run.scheduled_at).total_seconds() * 1000,
        took_ms,
        probe_cpu * 1000,
        extra={**fields, "duration_ms": round(took_ms, 1)},  # JSON logs: fields of their own
    )
