"""Between values and rows: what `record_run` and `save_baseline` write, and the frozen values
that reading a row gives back. Pure functions; no connection here.

Non-finite floats: JSON has no NaN or infinity, so inside the JSON columns they are null (as
`checks.serde` writes them); a NaN `value` is stored as NULL on both backends (SQLite would do
so silently anyway), while an infinite `value` is kept.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import RowMapping

from checks.observation import Column
from checks.result import CheckResult, RunResult, Status
from checks.serde import to_object
from monitor.state.values import (
    Baseline,
    HistoryPoint,
    RunCounts,
    StoredResult,
    StoredRun,
    freeze_object,
)

Row = dict[str, Any]


def aware(moment: datetime, name: str) -> datetime:
    """`moment` if it is timezone-aware; a naive time is a programming error."""
    if moment.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware {name}, found naive {moment.isoformat()}")
    return moment


def run_row(run: RunResult, recorded_at: datetime) -> Row:
    for name in ("scheduled_at", "started_at", "finished_at"):
        aware(getattr(run, name), name)
    counts = run.counts()
    subjects = {(r.feature_view, r.model) for r in run.results}
    view, model = next(iter(subjects)) if len(subjects) == 1 else (None, None)
    return {
        "run_id": run.run_id,
        "feature_view": view,
        "model": model,
        "scheduled_at": run.scheduled_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration_seconds": (run.finished_at - run.started_at).total_seconds(),
        "status": run.status.value,
        "n_pass": counts[Status.PASS.value],
        "n_warn": counts[Status.WARN.value],
        "n_fail": counts[Status.FAIL.value],
        "n_error": counts[Status.ERROR.value],
        "recorded_at": recorded_at,
    }


def result_rows(run: RunResult) -> list[Row]:
    """One row per result, `seq` its position in the run."""
    return [_result_row(run, seq, result) for seq, result in enumerate(run.results)]


def _result_row(run: RunResult, seq: int, result: CheckResult) -> Row:
    value = result.value
    doc = to_object(result)
    return {
        "run_id": run.run_id,
        "seq": seq,
        "scheduled_at": run.scheduled_at,
        "check_id": result.check,
        "kind": result.kind,
        "feature_view": result.feature_view or "",  # a model's: see the migration to 6
        "model": result.model,
        "feature": result.feature,
        "store": result.store,
        "target": result.target,
        "status": result.status.value,
        "severity": result.severity,
        "value": None if value is not None and math.isnan(value) else value,
        "threshold": doc["threshold"],
        "sample_size": result.sample_size,
        "details": doc["details"],
        "labels": dict(result.labels),
    }


def latest_rows(run: RunResult) -> list[Row]:
    """The pointer to each check's result in this run (the last, should a check id repeat),
    sorted by check id so that concurrent writers lock rows in the same order."""
    last: dict[str, int] = {}
    for seq, result in enumerate(run.results):
        last[result.check] = seq
    return [
        {"check_id": check, "run_id": run.run_id, "seq": seq, "scheduled_at": run.scheduled_at}
        for check, seq in sorted(last.items())
    ]


def baseline_row(baseline: Baseline) -> Row:
    aware(baseline.captured_at, "captured_at")
    return {
        "feature_view": baseline.feature_view,
        "store": baseline.store,
        "source": baseline.source,
        "columns": [
            {"name": c.name, "family": c.family, "native_type": c.native_type}
            for c in baseline.columns
        ],
        "captured_at": baseline.captured_at,
        "accepted_by": baseline.accepted_by,
        "comment": baseline.comment,
    }


def to_run(row: RowMapping) -> StoredRun:
    return StoredRun(
        run_id=row["run_id"],
        feature_view=row["feature_view"],
        scheduled_at=row["scheduled_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        duration_seconds=float(row["duration_seconds"]),
        status=Status(row["status"]),
        counts=RunCounts(
            passed=row["n_pass"], warned=row["n_warn"], failed=row["n_fail"], errors=row["n_error"]
        ),
        model=row.get("model"),  # a row of schema 5 or older has none
    )


def stored_results(run: RunResult) -> list[StoredResult]:
    """The results of `run` as the database gives them back once it is recorded."""
    return [to_result(row) for row in result_rows(run)]


def to_result(row: Mapping[Any, Any]) -> StoredResult:
    labels = row["labels"]
    if not isinstance(labels, dict):
        raise TypeError(f"expected labels as a JSON object, found {type(labels).__name__}")
    return StoredResult(
        run_id=row["run_id"],
        scheduled_at=row["scheduled_at"],
        check=row["check_id"],
        kind=row["kind"],
        feature_view=row["feature_view"] or None,  # '' is a model's result
        feature=row["feature"],
        store=row["store"],
        target=row["target"],
        status=Status(row["status"]),
        severity=row["severity"],
        value=_float(row["value"]),
        threshold=freeze_object(row["threshold"]),
        sample_size=row["sample_size"],
        details=freeze_object(row["details"]),
        labels=MappingProxyType({str(k): str(v) for k, v in labels.items()}),
        model=row.get("model"),  # a row of schema 5 or older has none
    )


def to_point(row: RowMapping) -> HistoryPoint:
    return HistoryPoint(
        run_id=row["run_id"],
        scheduled_at=row["scheduled_at"],
        value=_float(row["value"]),
        status=Status(row["status"]),
    )


def to_baseline(row: RowMapping) -> Baseline:
    return Baseline(
        feature_view=row["feature_view"],
        store=row["store"],
        source=row["source"],
        columns=tuple(
            Column(name=str(c["name"]), family=str(c["family"]), native_type=str(c["native_type"]))
            for c in row["columns"]
        ),
        captured_at=row["captured_at"],
        accepted_by=row["accepted_by"],
        comment=row["comment"],
    )


def _float(value: float | None) -> float | None:
    """A float: PostgreSQL's double precision comes back as float, SQLite's REAL may not."""
    return None if value is None else float(value)
