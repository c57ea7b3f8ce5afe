"""How numbers read to people: durations, percentages, counts, thresholds. Pure functions shared
by the HTML report, the command line and (later) alert messages."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from checks.result import Threshold


def format_seconds(seconds: float) -> str:
    """Ages and durations as people read them: `350ms`, `4.2s`, `42s`, `12m 05s`, `1h 02m`,
    `3d 04h`. The two largest units, the smaller truncated; negative ages (a clock ahead of the
    scheduler) keep their sign."""
    if not math.isfinite(seconds):
        return _non_finite(seconds)
    sign = "-" if seconds < 0 else ""
    size = abs(seconds)
    if size == 0:
        return "0s"
    if size < 1:
        return f"{sign}{round(size * 1000)}ms"
    if size < 9.95:
        return f"{sign}{size:.1f}s"
    whole = round(size)
    if whole < 60:
        return f"{sign}{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{sign}{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{sign}{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{sign}{days}d {hours:02d}h"


def format_ratio(ratio: float) -> str:
    """A rate as a percentage with three significant digits (`94.0%`, `1.23%`, `0.500%`), and at
    most four decimals. Rounding never makes a partial rate read as exactly 0% or 100%."""
    if not math.isfinite(ratio):
        return _non_finite(ratio)
    percent = ratio * 100
    if percent in (0, 100):
        return f"{percent:.0f}%"
    decimals = min(4, max(1, 2 - math.floor(math.log10(abs(percent)))))
    text = f"{percent:.{decimals}f}"
    while float(text) in (0, 100) and decimals < 4:
        decimals += 1
        text = f"{percent:.{decimals}f}"
    if float(text) == 0:
        return "<0.0001%"
    if float(text) == 100:
        return ">100%" if percent > 100 else "<100%"
    return f"{text}%"


def format_count(count: float) -> str:
    """Counts as integers with thousands separators; a fractional count keeps two decimals."""
    if not math.isfinite(count):
        return _non_finite(count)
    if float(count).is_integer():
        return f"{int(count):,}"
    return f"{count:,.2f}"


def format_value(value: float | None, unit: str) -> str:
    """A measured value or threshold in its unit; `—` when there is none (an error result)."""
    if value is None:
        return "—"
    if unit == "seconds":
        return format_seconds(value)
    if unit == "ratio":
        return format_ratio(value)
    if unit == "count":
        return format_count(value)
    return f"{value:g}"


def _non_finite(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "∞" if value > 0 else "-∞"


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC, to the second, or to the millisecond when the time has a fraction."""
    precision = "milliseconds" if moment.microsecond else "seconds"
    return moment.astimezone(UTC).isoformat(timespec=precision).replace("+00:00", "Z")


def format_threshold(threshold: Threshold) -> str:
    """`> 1h 00m fails, > 30m 00s warns`, as compactly: `max 1h 00m (warn 30m 00s)`. Two-sided
    (row counts): `min 1,000 max 9,000 (warn min 2,000 max 8,000)`."""
    unit = threshold.unit
    if threshold.two_sided:
        fails = [("min", threshold.fail_min), ("max", threshold.fail)]
        warns = [("min", threshold.warn_min), ("max", threshold.warn)]
        fail = " ".join(f"{word} {format_value(v, unit)}" for word, v in fails if v is not None)
        warn = " ".join(f"{word} {format_value(v, unit)}" for word, v in warns if v is not None)
        warn = f"warn {warn}" if warn else ""
        return f"{fail} ({warn})" if fail and warn else (fail or warn)
    parts = []
    if threshold.fail is not None:
        parts.append(f"{threshold.direction} {format_value(threshold.fail, unit)}")
    if threshold.warn is not None:
        warn = f"warn {format_value(threshold.warn, unit)}"
        parts.append(f"({warn})" if parts else warn)
    return " ".join(parts) or "-"
