"""When a feature view is checked by the daemon: every interval, or on a cron expression."""

from __future__ import annotations

import re
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from checks.duration import Duration
from checks.rules import exactly_one

_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,\-?LW#]+$")


class Schedule(BaseModel):
    """`{every: 5m}` or `{cron: "*/10 * * * *", timezone: Europe/Berlin}`, with optional jitter."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    every: Duration | None = Field(None, description="Run at this interval.")
    cron: str | None = Field(
        None, description="Standard 5-field cron expression (minute hour day month weekday)."
    )
    timezone: str = Field("UTC", description="IANA zone the cron expression is read in.")
    jitter: Duration = Field(
        timedelta(0), description="Random delay of up to this much, to spread load."
    )

    @field_validator("cron")
    @classmethod
    def _five_fields(cls, value: str | None) -> str | None:
        if value is None:
            return value
        fields = value.split()
        if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
            raise ValueError(
                f"expected a 5-field cron expression such as '*/10 * * * *', found {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _one_trigger(self) -> Schedule:
        exactly_one(self, "every", "cron")
        if self.every is not None and self.every < timedelta(seconds=1):
            raise ValueError(f"expected `every` of at least 1s, found {self.every}")
        return self


DEFAULT_SCHEDULE = Schedule(every=timedelta(minutes=5))
