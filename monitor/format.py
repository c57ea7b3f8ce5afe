"""The plain-text summary that `featmon check` and `featmon demo` print."""

from __future__ import annotations

from alerts.format import format_seconds, format_threshold, format_value
from checks.result import CheckResult, FreshnessDetails, RunResult, Status

_MARK = {Status.PASS: "pass", Status.WARN: "WARN", Status.FAIL: "FAIL", Status.ERROR: "ERROR"}


def summary_table(run: RunResult) -> str:
    """One line per check, worst first within each view, then the counts."""
    header = ("STATUS", "SEV", "CHECK", "VALUE", "THRESHOLD")
    rows = [header]
    for result in run.results:
        value = format_value(result.value, result.threshold.unit)
        if result.status is Status.ERROR:
            value = _reason(result.details.as_json().get("reason"))
        elif future := _future(result):
            value = future if result.value is None else f"{value}, {future}"
        rows.append(
            (
                _MARK[result.status],
                result.severity,
                result.check,
                value,
                format_threshold(result.threshold),
            )
        )
    widths = [min(max(len(row[i]) for row in rows), 60) for i in range(len(header) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True))
        + "  "
        + row[-1]
        for row in rows
    ]
    counts = run.counts()
    took = (run.finished_at - run.started_at).total_seconds()
    lines.append("")
    lines.append(
        f"run {run.run_id}: {len(run.results)} checks: {counts['pass']} pass, "
        f"{counts['warn']} warn, {counts['fail']} fail, {counts['error']} error "
        f"({took:.1f}s); status {run.status.value}"
    )
    return "\n".join(lines)


def _future(result: CheckResult) -> str | None:
    """`2 future (up to 10d 15h ahead)`: values from the future, which fail a freshness check."""
    details = result.details
    if not isinstance(details, FreshnessDetails) or not details.future:
        return None
    ahead = details.future_ahead
    return f"{details.future} future" + (
        "" if ahead is None else f" (up to {format_seconds(ahead)} ahead)"
    )


def _reason(reason: object) -> str:
    text = str(reason or "error")
    return text if len(text) <= 60 else text[:57] + "..."
