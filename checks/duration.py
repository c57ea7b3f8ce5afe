"""Durations as people write them in YAML: `30s`, `5m`, `1h30m`, `7d`, `2w` (or whole seconds)."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
PATTERN = r"^(\d+(\.\d+)?(ms|s|m|h|d|w))+$"


def parse_duration(value: object) -> timedelta:
    """`"1h30m"` -> 5400 s. A bare number is seconds. Raises ValueError saying what was expected."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"expected a duration of zero or more seconds, found {value}")
        return _seconds(value, value)
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", text):  # "86400", as ${TTL:-86400} expands
            return _seconds(float(text), value)
        if text and re.fullmatch(PATTERN, text):
            return _seconds(sum(float(n) * _UNITS[u] for n, u in _PART.findall(text)), value)
    raise ValueError(f"expected a duration such as 30s, 5m, 1h30m or 7d, found {value!r}")


def _seconds(seconds: float, written: object) -> timedelta:
    """A timedelta; one too long for it (`1e20`, `99999999999w`) is a mistake, not a crash."""
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(
            f"expected a duration of at most {timedelta.max.days}d, found {written!r}"
        ) from None


def format_duration(value: timedelta) -> str:
    """The shortest exact spelling: 5400 s -> `1h30m`, 0 -> `0s`."""
    millis = round(value.total_seconds() * 1000)
    if millis % 1000:
        return f"{millis}ms"
    seconds = millis // 1000
    if seconds == 0:
        return "0s"
    out = ""
    for unit in ("w", "d", "h", "m", "s"):
        size = int(_UNITS[unit])
        count, seconds = divmod(seconds, size)
        if count:
            out += f"{count}{unit}"
    return out


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": PATTERN, "examples": ["30s", "5m", "1h", "7d"]},
                {"type": "number", "minimum": 0, "description": "seconds"},
            ]
        }
    ),
]
