"""Durations as people write them in YAML, and the shortest spelling they are written back in."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from checks.duration import PATTERN, Duration, format_duration, parse_duration

SPELLED = "expected a duration such as 30s, 5m, 1h30m or 7d, found "


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h", 3600),
        ("1h30m", 5400),
        ("7d", 604_800),
        ("2w", 1_209_600),
        ("1.5h", 5400),
        ("250ms", 0.25),
        ("1m30s", 90),
        ("1w2d3h4m5s", 604_800 + 2 * 86_400 + 3 * 3600 + 4 * 60 + 5),
        (" 1h 30m ", 5400),
        ("0s", 0),
    ],
)
def test_a_written_duration_is_its_sum_of_units(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(("number", "seconds"), [(90, 90), (0, 0), (2.5, 2.5)])
def test_a_bare_number_is_seconds(number: float, seconds: float) -> None:
    assert parse_duration(number) == timedelta(seconds=seconds)


def test_digits_in_text_are_seconds_as_an_env_default_expands() -> None:
    """`ttl: ${TTL:-86400}` interpolates to the text "86400": one day."""
    assert parse_duration("86400") == timedelta(days=1)


def test_a_timedelta_is_taken_as_it_is() -> None:
    assert parse_duration(timedelta(hours=2)) == timedelta(hours=2)


@pytest.mark.parametrize(
    "written", ["", "abc", "5x", "h", "1 hour", "1h-30m", "-5m", "5m ago", "1,5h"]
)
def test_text_that_is_not_a_duration_says_what_was_expected(written: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(f"{SPELLED}{written!r}") + "$"):
        parse_duration(written)


@pytest.mark.parametrize("written", [True, None, [5], {"m": 5}])
def test_a_value_of_another_type_is_not_a_duration(written: object) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(f"{SPELLED}{written!r}") + "$"):
        parse_duration(written)


@pytest.mark.parametrize("number", [-1, -0.5, float("nan"), float("inf")])
def test_a_negative_or_non_finite_number_is_refused(number: float) -> None:
    with pytest.raises(
        ValueError, match=re.escape(f"expected a duration of zero or more seconds, found {number}")
    ):
        parse_duration(number)


@pytest.mark.parametrize("written", [1e20, "99999999999w"])
def test_a_duration_too_long_to_hold_is_a_mistake_not_a_crash(written: object) -> None:
    """timedelta overflows past 999999999 days: the reader gets a ValueError pydantic can report."""
    with pytest.raises(ValueError, match=re.escape("expected a duration of at most 999999999d")):
        parse_duration(written)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=30), "30s"),
        (timedelta(minutes=90), "1h30m"),
        (timedelta(days=7), "1w"),
        (timedelta(days=14), "2w"),
        (timedelta(days=8, hours=1, minutes=1, seconds=1), "1w1d1h1m1s"),
        (timedelta(seconds=1.5), "1500ms"),
        (timedelta(milliseconds=250), "250ms"),
    ],
)
def test_a_duration_is_formatted_in_its_shortest_exact_spelling(
    delta: timedelta, text: str
) -> None:
    assert format_duration(delta) == text


@pytest.mark.parametrize("text", ["30s", "5m", "1h30m", "1d", "2w", "1w1d", "1500ms"])
def test_a_shortest_spelling_survives_a_round_trip(text: str) -> None:
    assert format_duration(parse_duration(text)) == text


@pytest.mark.parametrize(("text", "shortest"), [("1.5h", "1h30m"), ("90m", "1h30m"), ("7d", "1w")])
def test_another_spelling_comes_back_shortest(text: str, shortest: str) -> None:
    assert format_duration(parse_duration(text)) == shortest


@given(st.integers(min_value=0, max_value=10**12))
def test_every_whole_millisecond_count_round_trips(millis: int) -> None:
    delta = timedelta(milliseconds=millis)
    text = format_duration(delta)
    assert re.fullmatch(PATTERN, text)
    assert parse_duration(text) == delta


def test_a_duration_field_reads_text_and_writes_it_back_as_text() -> None:
    adapter: TypeAdapter[timedelta] = TypeAdapter(Duration)
    assert adapter.validate_python("1h30m") == timedelta(minutes=90)
    assert adapter.dump_python(timedelta(minutes=90), mode="json") == "1h30m"


def test_a_duration_field_reports_the_reader_message() -> None:
    adapter: TypeAdapter[timedelta] = TypeAdapter(Duration)
    with pytest.raises(ValidationError) as caught:
        adapter.validate_python("soon")
    assert caught.value.errors()[0]["ctx"]["error"].args == (f"{SPELLED}'soon'",)


def test_the_published_schema_takes_text_or_seconds() -> None:
    schema = TypeAdapter(Duration).json_schema()
    assert schema["anyOf"][0]["pattern"] == PATTERN
    assert schema["anyOf"][1] == {"type": "number", "minimum": 0, "description": "seconds"}
    assert all(re.fullmatch(PATTERN, e) for e in schema["anyOf"][0]["examples"])
