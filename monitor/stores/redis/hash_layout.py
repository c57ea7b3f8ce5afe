"""The plain-hash layout, for teams without Feast: key templates and text or JSON values. Pure.

One HASH per entity (and feature view, when the template names it), keyed by a template such as
`features:{feature_view}:{user_id}` whose placeholders are `feature_view` and the view's join
keys. Field names are the feature names; one field (config `timestamp_field`) holds the event
time as epoch seconds, epoch milliseconds or ISO 8601 (naive times are in the store's zone).
Values are UTF-8 text parsed by the declared dtype, or JSON; an empty string or JSON null is
NULL. Every parser here raises ValueError (or TypeError) for what it cannot read, and the store
counts that as a decode error.
"""

from __future__ import annotations

import json
import math
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal

from checks.model import FeatureView
from checks.observation import EntityValue, FeatureState, FeatureValue
from monitor.feast.redis_layout import glob_escape

TimeFormat = Literal["epoch_s", "epoch_ms", "iso8601"]
ValueFormat = Literal["text", "json"]

VIEW_PLACEHOLDER = "feature_view"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INT = re.compile(r"[+-]?\d+")
_CANONICAL_INT = re.compile(r"-?(0|[1-9]\d*)")
_FLOAT = re.compile(
    r"[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|nan|inf|infinity)", re.IGNORECASE
)
_INT_RANGES = {"int32": (-(1 << 31), (1 << 31) - 1)}
_INT64_RANGE = (-(1 << 63), (1 << 63) - 1)
_BOOLS = {"true": True, "false": False, "1": True, "0": False}


@dataclass(frozen=True)
class KeyTemplate:
    """A parsed key template: literal text and placeholders, in order."""

    text: str
    parts: tuple[tuple[str, str | None], ...]  # (literal before, placeholder or None)

    @classmethod
    def parse(cls, text: str) -> KeyTemplate:
        """Raises ValueError for a template that str.format could not fill, or that uses
        conversions, format specs or empty placeholders."""
        parts: list[tuple[str, str | None]] = []
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise ValueError(f"key template {text!r} is malformed: {exc}") from exc
        for literal, name, spec, conversion in parsed:
            if name is not None and (not name or spec or conversion):
                raise ValueError(
                    f"expected placeholders like {{user_id}} in key template {text!r}, "
                    f"found {{{name}{'!' + conversion if conversion else ''}"
                    f"{':' + spec if spec else ''}}}"
                )
            parts.append((literal, name))
        return cls(text, tuple(parts))

    @property
    def placeholders(self) -> frozenset[str]:
        return frozenset(name for _, name in self.parts if name is not None)

    @property
    def names_view(self) -> bool:
        """Whether each view has its own hash (the template has `{feature_view}`)."""
        return VIEW_PLACEHOLDER in self.placeholders

    def check(self, view: FeatureView) -> None:
        """Raises ValueError unless the placeholders are exactly the view's join keys, with
        `feature_view` optional."""
        join_keys = set(view.join_keys)
        unknown = sorted(self.placeholders - join_keys - {VIEW_PLACEHOLDER})
        missing = sorted(join_keys - self.placeholders)
        if unknown or missing:
            raise ValueError(
                f"key template {self.text!r} must name the join keys "
                f"{sorted(join_keys)} (and may name feature_view); "
                f"found unknown {unknown} and missing {missing}"
            )

    def key(self, online_name: str, values: Mapping[str, EntityValue]) -> bytes:
        """The key of one entity. Raises TypeError for a value that is not int, str or bytes."""
        out = bytearray()
        for literal, name in self.parts:
            out += literal.encode("utf-8")
            if name == VIEW_PLACEHOLDER:
                out += online_name.encode("utf-8")
            elif name is not None:
                out += _key_text(values[name])
        return bytes(out)

    def pattern(self, online_name: str) -> bytes:
        """The MATCH pattern of the view's keys: literals escaped, join keys as `*`."""
        out = bytearray()
        for literal, name in self.parts:
            out += glob_escape(literal.encode("utf-8"))
            if name == VIEW_PLACEHOLDER:
                out += glob_escape(online_name.encode("utf-8"))
            elif name is not None:
                out += b"*"
        return bytes(out)

    def split(self, online_name: str, key: bytes) -> dict[str, bytes]:
        """The raw join key values in `key`. Raises ValueError when `key` does not fit the
        template. When a literal can also occur inside a value the split is the one with the
        shortest leading values."""
        regex = bytearray()
        groups: dict[str, str] = {}
        for literal, name in self.parts:
            regex += re.escape(literal.encode("utf-8"))
            if name == VIEW_PLACEHOLDER:
                regex += re.escape(online_name.encode("utf-8"))
            elif name is not None and name in groups:
                regex += f"(?P={groups[name]})".encode()
            elif name is not None:
                groups[name] = f"g{len(groups)}"
                regex += f"(?P<{groups[name]}>.+?)".encode()
        match = re.fullmatch(bytes(regex), key, re.DOTALL)
        if match is None:
            raise ValueError(f"key {key!r} does not fit the template {self.text!r}")
        return {name: match.group(group) for name, group in groups.items()}


def _key_text(value: EntityValue) -> bytes:
    if isinstance(value, bool):
        raise TypeError("expected an int, str or bytes join key value, found bool")
    if isinstance(value, int):
        return str(value).encode("ascii")
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytes):
        return value
    raise TypeError(f"expected an int, str or bytes join key value, found {type(value).__name__}")


def key_value(raw: bytes, dtype: str | None) -> EntityValue:
    """A join key value read back from a key: by its declared dtype, or, undeclared, an int
    when it is a canonical decimal (so that formatting it again gives the same key) and text
    otherwise. Raises ValueError."""
    if dtype == "bytes":
        return raw
    text = raw.decode("utf-8")
    if dtype == "string":
        return text
    if dtype is None:
        return int(text) if _CANONICAL_INT.fullmatch(text) else text
    if not _CANONICAL_INT.fullmatch(text):
        raise ValueError(f"expected a decimal integer for a {dtype} join key, found {text!r}")
    return int(text)


def decode_time(
    raw: bytes, time_format: TimeFormat, zone: tzinfo, value_format: ValueFormat
) -> datetime:
    """An event time as an aware UTC datetime. Under value_format json a quoted string is
    unquoted first. Raises ValueError."""
    text = raw.decode("utf-8").strip()
    if value_format == "json" and text.startswith('"'):
        loaded = json.loads(text)
        if not isinstance(loaded, str):
            raise ValueError(f"expected a JSON string or number for a time, found {text!r}")
        text = loaded.strip()
    return parse_time(text, time_format, zone)


def parse_time(text: str, time_format: TimeFormat, zone: tzinfo) -> datetime:
    """A time written as epoch seconds, epoch milliseconds or ISO 8601 (naive in `zone`), as
    an aware UTC datetime. Raises ValueError."""
    if time_format == "iso8601":
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            parsed = parsed.replace(tzinfo=zone)
        try:
            return parsed.astimezone(UTC)
        except OverflowError as exc:
            raise ValueError(f"time {text!r} is out of range") from exc
    if not _FLOAT.fullmatch(text):
        raise ValueError(f"expected {time_format} as a number, found {text!r}")
    number = float(text) if not _INT.fullmatch(text) else int(text)
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError(f"expected a finite {time_format}, found {text!r}")
    try:
        if time_format == "epoch_ms":
            return _EPOCH + timedelta(milliseconds=number)
        return _EPOCH + timedelta(seconds=number)
    except OverflowError as exc:
        raise ValueError(f"{time_format} {text!r} is out of range") from exc


@dataclass(frozen=True)
class ValueReader:
    """Decodes one stored field by its declared dtype."""

    value_format: ValueFormat
    time_format: TimeFormat
    zone: tzinfo

    def decode(self, raw: bytes, dtype: str) -> tuple[FeatureState, FeatureValue]:
        """NULL for b"" (and JSON null), else VALUE. Raises ValueError or TypeError."""
        if raw == b"":
            return FeatureState.NULL, None
        if dtype == "bytes" and self.value_format == "text":
            return FeatureState.VALUE, raw
        text = raw.decode("utf-8")
        if self.value_format == "json":
            loaded = json.loads(text)
            if loaded is None:
                return FeatureState.NULL, None
            return FeatureState.VALUE, self._from_json(loaded, dtype)
        return FeatureState.VALUE, self._from_text(text, dtype)

    def _from_text(self, text: str, dtype: str) -> FeatureValue:
        if dtype == "string":
            return text
        stripped = text.strip()
        if dtype.startswith("int"):
            if not _INT.fullmatch(stripped):
                raise ValueError(f"expected an integer, found {text!r}")
            return _in_range(int(stripped), dtype)
        if dtype.startswith("float") or dtype == "double":
            if not _FLOAT.fullmatch(stripped):
                raise ValueError(f"expected a number, found {text!r}")
            return float(stripped)
        if dtype == "bool":
            if stripped.lower() not in _BOOLS:
                raise ValueError(f"expected true, false, 1 or 0, found {text!r}")
            return _BOOLS[stripped.lower()]
        if dtype == "timestamp":
            return parse_time(stripped, self.time_format, self.zone)
        raise ValueError(f"no text reading for dtype {dtype!r}")

    def _from_json(self, loaded: object, dtype: str) -> FeatureValue:
        if dtype.startswith("int") and isinstance(loaded, int) and not isinstance(loaded, bool):
            return _in_range(loaded, dtype)
        if (dtype.startswith("float") or dtype == "double") and (
            isinstance(loaded, int | float) and not isinstance(loaded, bool)
        ):
            return float(loaded)
        if dtype == "bool" and isinstance(loaded, bool):
            return loaded
        if dtype == "string" and isinstance(loaded, str):
            return loaded
        if dtype == "bytes" and isinstance(loaded, str):
            return loaded.encode("utf-8")
        if (
            dtype == "timestamp"
            and isinstance(loaded, str | int | float)
            and not isinstance(loaded, bool)
        ):
            return parse_time(str(loaded), self.time_format, self.zone)
        raise ValueError(f"expected JSON for a {dtype}, found {type(loaded).__name__}")


def _in_range(value: int, dtype: str) -> int:
    low, high = _INT_RANGES.get(dtype, _INT64_RANGE)
    if not low <= value <= high:
        raise ValueError(f"{value} does not fit a {dtype}")
    return value
