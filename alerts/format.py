"""How numbers read to people: durations, percentages, counts, thresholds. Pure functions shared
by the HTML report, the command line and (later) alert messages."""

from __future__ import annotations

import math

from checks.result import Threshold


def format_duration(seconds: float) -> str:
    """`3725` -> `1h 02m`; `59.5` -> `59.5s`; negative ages (clock skew) keep their sign."""
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if seconds < 60:
        return f"{seconds:.3g}s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s"


def format_ratio(value: float) -> str:
    """A fraction as a percentage with enough digits to tell 0.5% from 0%: `0.0208` -> `2.08%`."""
    percent = value * 100
    if percent in {0, 100} or math.isnan(percent):
        return f"{percent:.0f}%"
    if abs(percent) < 10:
        return f"{percent:.2f}%"
    return f"{percent:.1f}%"


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "seconds":
        return format_duration(value)
    if unit == "ratio":
        return format_ratio(value)
    if unit == "count":
        return f"{value:.0f}"
    return f"{value:g}"


def format_threshold(threshold: Threshold) -> str:
    """`> 1h 00m fails, > 30m 00s warns`, as compactly: `max 1h 00m (warn 30m 00s)`."""
    parts = []
    if threshold.fail is not None:
        parts.append(f"{threshold.direction} {format_value(threshold.fail, threshold.unit)}")
    if threshold.warn is not None:
        warn = f"warn {format_value(threshold.warn, threshold.unit)}"
        parts.append(f"({warn})" if parts else warn)
    return " ".join(parts) or "-"
