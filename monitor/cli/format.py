"""The plain-text summary that `featmon check` and `featmon demo` print."""

from __future__ import annotations

import textwrap

from alerts.format import format_seconds, format_threshold, format_value
from checks.result import CheckResult, FreshnessDetails, RunResult, Status
from checks.serde import to_object

_MARK = {Status.PASS: "pass", Status.WARN: "WARN", Status.FAIL: "FAIL", Status.ERROR: "ERROR"}


REASON_WIDTH = 100
"""Where the reason of an error wraps: it is shown whole, under its row."""


def summary_table(run: RunResult) -> str:
    """One line per check, worst first within each view, then the counts. An error's reason
    follows its row in full, wrapped, so that the cause is never cut."""
    header = ("STATUS", "SEV", "CHECK", "VALUE", "THRESHOLD")
    rows = [header]
    reasons: dict[int, str] = {}  # row -> the reason of its error
    for result in run.results:
        value = format_value(result.value, result.threshold.unit)
        if result.status is Status.ERROR:
            value = "—"
            reasons[len(rows)] = str(to_object(result.details).get("reason") or "error")
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
    indent = " " * (widths[0] + widths[1] + 4)  # under CHECK
    lines = []
    for index, row in enumerate(rows):
        cells = zip(row[:-1], widths, strict=True)
        lines.append("  ".join(cell.ljust(width) for cell, width in cells) + "  " + row[-1])
        if index in reasons:
            lines.extend(
                textwrap.wrap(
                    reasons[index],
                    REASON_WIDTH,
                    initial_indent=indent + "error: ",
                    subsequent_indent=indent + "  ",
                    break_long_words=False,
                    break_on_hyphens=False,
                )
            )
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
