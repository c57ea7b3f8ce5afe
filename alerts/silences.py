"""Silences and maintenance windows: alerts that are tracked but not sent, and what muted them.

A `Silence` mutes every alert whose labels satisfy all of its matchers from `starts_at` until
`ends_at`. A `MaintenanceWindow` is a silence that recurs: on the given weekdays, from a local
start time in an IANA zone, for a duration. `Silences.is_silenced(labels, now)` answers with the
silence (for a window, the silence of its current occurrence) or None. Pure: `now` is passed in.

Matchers follow Alertmanager: `name="value"` (equal), `name!="value"`, `name=~"regex"`,
`name!~"regex"`; a regex is anchored at both ends, and a label the alert lacks reads as "". A
silence none of whose matchers needs a non-empty label would mute every alert, so it is refused.

Time in a window: `start` is wall-clock time in `timezone` on the listed local weekday (so a
02:00 Europe/Berlin window is 01:00 UTC in winter and 00:00 UTC in summer); `duration` is elapsed
time from that instant, so a window that spans a DST change lasts exactly its duration. A start
inside the spring-forward gap is read with the offset before the change (Python's `fold=0`):
02:30 on the night Berlin skips from 02:00 to 03:00 starts at 03:30 CEST; a start in the repeated
autumn hour means its first occurrence.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from checks.duration import Duration

Op = Literal["=", "!=", "=~", "!~"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LABEL_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_WRITTEN = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"(.*)"|(.*?))\s*$')
_EXAMPLE = 'store="redis_prod" or severity=~"P[12]"'


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Matcher(_Strict):
    """One condition on one label."""

    name: str = Field(pattern=LABEL_NAME, description="Label name.")
    op: Op = Field("=", description="`=`, `!=`, `=~` (regex, anchored) or `!~`.")
    value: str = Field(description="The value, or a regular expression for `=~` and `!~`.")

    @model_validator(mode="after")
    def _valid_regex(self) -> Matcher:
        if self.op in ("=~", "!~"):
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(
                    f"expected a regular expression, found {self.value!r} ({exc})"
                ) from None
        return self

    @cached_property
    def _pattern(self) -> re.Pattern[str]:
        return re.compile(self.value)

    def matches(self, labels: Mapping[str, str]) -> bool:
        found = labels.get(self.name, "")
        if self.op == "=":
            return found == self.value
        if self.op == "!=":
            return found != self.value
        hit = self._pattern.fullmatch(found) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f"{self.name}{self.op}{json.dumps(self.value, ensure_ascii=False)}"


def parse_matcher(value: object) -> object:
    """`team="growth"` (quotes optional) becomes `{name, op, value}`; mappings pass through."""
    if not isinstance(value, str):
        return value
    found = _WRITTEN.fullmatch(value)
    if found is None:
        raise ValueError(f"expected a matcher such as {_EXAMPLE}, found {value!r}")
    name, op, quoted, bare = found.groups()
    return {"name": name, "op": op, "value": quoted if quoted is not None else bare}


MatcherField = Annotated[
    Matcher,
    BeforeValidator(parse_matcher),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "string",
                    "pattern": r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*(=~|!~|!=|=)",
                    "examples": ['store="redis_prod"', 'severity=~"P[12]"', 'team!="ml"'],
                },
                {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "pattern": LABEL_NAME},
                        "op": {"enum": ["=", "!=", "=~", "!~"]},
                        "value": {"type": "string"},
                    },
                    "required": ["name", "value"],
                    "additionalProperties": False,
                },
            ]
        }
    ),
]


def _not_everything(matchers: tuple[Matcher, ...]) -> tuple[Matcher, ...]:
    """Alertmanager's rule: a silence whose every matcher accepts an absent label mutes all."""
    if all(m.matches({}) for m in matchers):
        raise ValueError(
            "expected at least one matcher that needs a non-empty label value "
            f"(such as {_EXAMPLE}), found only matchers that every alert satisfies"
        )
    return matchers


Matchers = Annotated[tuple[MatcherField, ...], Field(min_length=1), AfterValidator(_not_everything)]


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"expected a time with a zone such as 2024-06-01T12:00:00Z, found {value.isoformat()}"
        )
    return value


class Silence(_Strict):
    """Mutes the alerts its matchers select from `starts_at` until (not including) `ends_at`."""

    id: str = Field(min_length=1, description="Unique; shown with every alert it mutes.")
    matchers: Matchers
    starts_at: Annotated[datetime, AfterValidator(_aware)]
    ends_at: Annotated[datetime, AfterValidator(_aware)]
    created_by: str = Field(min_length=1, description="Who asked for it.")
    comment: str = Field(min_length=1, description="Why: a ticket, an incident, a migration.")

    @model_validator(mode="after")
    def _ends_after_start(self) -> Silence:
        if self.ends_at <= self.starts_at:
            raise ValueError(
                f"expected ends_at after starts_at ({self.starts_at.isoformat()}), "
                f"found {self.ends_at.isoformat()}"
            )
        return self

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)


def _time_of_day(value: object) -> object:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(  # noqa: TRY004 - pydantic reports ValueError as a located problem
            'expected a time of day in quotes such as "02:00" (YAML reads an unquoted 12:30 '
            f"as the number 750), found {value}"
        )
    return value


class MaintenanceWindow(_Strict):
    """A silence that recurs every listed weekday at a local time, for a duration."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Unique; names each occurrence.")
    matchers: Matchers
    weekdays: tuple[Weekday, ...] = Field(WEEKDAYS, min_length=1, description="Local weekdays.")
    start: Annotated[time, BeforeValidator(_time_of_day)] = Field(
        description='Local wall-clock start, "HH:MM" in quotes.'
    )
    duration: Duration = Field(description="Elapsed time from the start, at most 7d.")
    timezone: str = Field("UTC", description="IANA zone of `start` and `weekdays`.")
    created_by: str = "config.yaml"
    comment: str = ""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"expected an IANA time zone such as UTC or Europe/Berlin, found {value!r}"
            ) from None
        return value

    @field_validator("duration")
    @classmethod
    def _bounded(cls, value: timedelta) -> timedelta:
        if not timedelta(0) < value <= timedelta(days=7):
            raise ValueError(f"expected a duration above 0s and at most 7d, found {value}")
        return value

    @field_validator("start")
    @classmethod
    def _naive(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError(
                f"expected a local time without a zone (set `timezone`), found {value.isoformat()}"
            )
        return value

    def occurrence(self, now: datetime) -> Silence | None:
        """The silence of the occurrence that covers `now`, if one does."""
        zone = ZoneInfo(self.timezone)
        today = now.astimezone(zone).date()
        reach = math.ceil(self.duration / timedelta(days=1)) + 1  # DST shifts a start by hours
        for back in range(reach + 1):
            day = today - timedelta(days=back)
            if WEEKDAYS[day.weekday()] not in self.weekdays:
                continue
            starts = self.starts_on(day)
            ends = starts + self.duration  # UTC arithmetic: elapsed time, not wall-clock time
            if starts <= now < ends:
                return Silence(
                    id=f"{self.name}@{starts.isoformat().replace('+00:00', 'Z')}",
                    matchers=self.matchers,
                    starts_at=starts,
                    ends_at=ends,
                    created_by=self.created_by,
                    comment=self.comment or f"maintenance window {self.name}",
                )
        return None

    def starts_on(self, day: date) -> datetime:
        """The UTC instant the window opens on local `day` (fold=0 for gaps and repeats)."""
        local = datetime.combine(day, self.start, tzinfo=ZoneInfo(self.timezone))
        return local.astimezone(UTC)


def _unique(kind: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"expected unique {kind}, found {name!r} twice")
        seen.add(name)


def _unique_silences(silences: tuple[Silence, ...]) -> tuple[Silence, ...]:
    _unique("silence ids", [s.id for s in silences])
    return silences


def _unique_windows(windows: tuple[MaintenanceWindow, ...]) -> tuple[MaintenanceWindow, ...]:
    _unique("maintenance window names", [w.name for w in windows])
    return windows


SilenceList = Annotated[tuple[Silence, ...], AfterValidator(_unique_silences)]
"""config.yaml `silences:`: ids unique."""
WindowList = Annotated[tuple[MaintenanceWindow, ...], AfterValidator(_unique_windows)]
"""config.yaml `maintenance_windows:`: names unique."""


@dataclass(frozen=True)
class Silences:
    """Every silence and window in force: those of config.yaml, and those the daemon keeps in
    its state database (created through the API)."""

    silences: tuple[Silence, ...] = ()
    windows: tuple[MaintenanceWindow, ...] = ()

    def active(self, now: datetime) -> tuple[Silence, ...]:
        """The silences in force at `now`, window occurrences included."""
        _aware(now)
        current = [s for s in self.silences if s.active(now)]
        current.extend(o for w in self.windows if (o := w.occurrence(now)) is not None)
        return tuple(current)

    def matching(self, labels: Mapping[str, str], now: datetime) -> tuple[Silence, ...]:
        return tuple(s for s in self.active(now) if s.matches(labels))

    def is_silenced(self, labels: Mapping[str, str], now: datetime) -> Silence | None:
        """The matching silence that lasts longest (then the smallest id), or None."""
        found = self.matching(labels, now)
        if not found:
            return None
        return min(found, key=lambda s: (-s.ends_at.timestamp(), s.id))
