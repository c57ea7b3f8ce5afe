"""Silences by matcher and recurring maintenance windows in IANA zones, across DST changes.

Europe/Berlin: CET (UTC+1) in winter, CEST (UTC+2) in summer; clocks went forward at 01:00 UTC
on Sunday 2024-03-31 (02:00 -> 03:00 local) and back at 01:00 UTC on Sunday 2024-10-27
(03:00 -> 02:00 local)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import TypeAdapter, ValidationError

from alerts.silences import (
    MaintenanceWindow,
    Matcher,
    MatcherField,
    Silence,
    SilenceList,
    Silences,
    WindowList,
)

AT = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
ALERT = {"alertname": "featmon_check_failed", "store": "redis_prod", "severity": "P1"}
MATCHER = TypeAdapter(MatcherField)


def matcher(text: str) -> Matcher:
    return MATCHER.validate_python(text)


def silence(*matchers: str, hours: float = 2, **fields: object) -> Silence:
    data: dict[str, object] = {
        "id": "s1",
        "matchers": list(matchers),
        "starts_at": AT,
        "ends_at": AT + timedelta(hours=hours),
        "created_by": "ops@example.com",
        "comment": "Redis upgrade, CHG-1234",
    }
    return Silence.model_validate(data | fields)


def window(**fields: object) -> MaintenanceWindow:
    """Sundays 02:00 Europe/Berlin for 2h, muting redis_prod."""
    data: dict[str, object] = {
        "name": "redis-patching",
        "matchers": ['store="redis_prod"'],
        "weekdays": ["sun"],
        "start": "02:00",
        "duration": "2h",
        "timezone": "Europe/Berlin",
    }
    return MaintenanceWindow.model_validate(data | fields)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- matchers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name", "op", "value"),
    [
        ('store="redis_prod"', "store", "=", "redis_prod"),
        ("store=redis_prod", "store", "=", "redis_prod"),
        ('severity=~"P[12]"', "severity", "=~", "P[12]"),
        ("team != ml", "team", "!=", "ml"),
        ('check!~".*coverage.*"', "check", "!~", ".*coverage.*"),
    ],
)
def test_a_written_matcher_is_parsed_into_name_op_and_value(
    text: str, name: str, op: str, value: str
) -> None:
    parsed = matcher(text)
    assert (parsed.name, parsed.op, parsed.value) == (name, op, value)


def test_a_matcher_can_be_written_as_a_mapping() -> None:
    parsed = MATCHER.validate_python({"name": "store", "op": "=~", "value": "redis.*"})
    assert parsed == matcher('store=~"redis.*"')


def test_a_matcher_that_is_not_one_says_what_was_expected() -> None:
    with pytest.raises(ValidationError, match="expected a matcher such as"):
        matcher("redis_prod")


def test_an_invalid_regex_is_refused() -> None:
    with pytest.raises(ValidationError, match="expected a regular expression"):
        matcher('store=~"("')


def test_a_regex_matcher_must_match_the_whole_value() -> None:
    assert not matcher("store=~redis").matches(ALERT)
    assert matcher("store=~redis.*").matches(ALERT)


def test_negative_matchers_exclude_and_an_absent_label_reads_as_empty() -> None:
    assert matcher('team!="ml"').matches(ALERT)
    assert not matcher('store!="redis_prod"').matches(ALERT)
    assert not matcher('severity!~"P[12]"').matches(ALERT)
    assert matcher('team=""').matches(ALERT)


# --- silences ---------------------------------------------------------------------------------


def test_a_silence_mutes_alerts_matching_all_its_matchers() -> None:
    muted = Silences((silence('store="redis_prod"', 'severity=~"P[12]"'),))
    assert muted.is_silenced(ALERT, AT) is not None
    assert muted.is_silenced({**ALERT, "severity": "P3"}, AT) is None


def test_a_silence_holds_from_its_start_until_just_before_its_end() -> None:
    muted = Silences((silence('store="redis_prod"'),))
    before, end = AT - timedelta(seconds=1), AT + timedelta(hours=2)
    assert [
        muted.is_silenced(ALERT, t) is not None
        for t in (before, AT, end - timedelta(seconds=1), end)
    ] == [
        False,
        True,
        True,
        False,
    ]


def test_of_several_silences_the_one_that_lasts_longest_is_named() -> None:
    short = silence('store="redis_prod"', id="short")
    long = silence('severity="P1"', id="long", hours=8)
    found = Silences((short, long)).is_silenced(ALERT, AT)
    assert found is not None
    assert found.id == "long"


def test_a_silence_every_alert_satisfies_is_refused() -> None:
    with pytest.raises(ValidationError, match="needs a non-empty label value"):
        silence('team!="ml"', 'store=~".*"')


def test_a_silence_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValidationError, match="expected ends_at after starts_at"):
        silence('store="redis_prod"', hours=-1)


def test_a_silence_time_without_a_zone_is_refused() -> None:
    with pytest.raises(ValidationError, match="expected a time with a zone"):
        silence('store="redis_prod"', starts_at="2024-06-01T12:00:00")


def test_silence_ids_are_unique() -> None:
    with pytest.raises(ValidationError, match="expected unique silence ids, found 's1' twice"):
        TypeAdapter(SilenceList).validate_python([silence('store="a"'), silence('store="b"')])


# --- maintenance windows ----------------------------------------------------------------------


def test_a_window_is_at_local_time_in_winter() -> None:
    muted = Silences(windows=(window(),))  # Sunday 2024-03-24, CET: 02:00-04:00 = 01:00-03:00Z
    assert muted.is_silenced(ALERT, utc(2024, 3, 24, 0, 30)) is None
    assert muted.is_silenced(ALERT, utc(2024, 3, 24, 1, 0)) is not None
    assert muted.is_silenced(ALERT, utc(2024, 3, 24, 2, 59)) is not None


def test_a_window_follows_local_time_across_the_dst_change() -> None:
    muted = Silences(windows=(window(),))  # Sunday 2024-04-07, CEST: 02:00-04:00 = 00:00-02:00Z
    assert muted.is_silenced(ALERT, utc(2024, 4, 7, 0, 0)) is not None
    assert (
        muted.is_silenced(ALERT, utc(2024, 4, 7, 2, 30)) is None
    )  # 04:30 CEST (in winter 03:30 CET: muted)


def test_a_window_spanning_the_dst_change_lasts_its_duration_in_elapsed_time() -> None:
    night = window(start="01:00", duration="3h")  # 01:00 CET on 2024-03-31 = 00:00Z
    occurrence = night.occurrence(utc(2024, 3, 31, 2, 59))
    assert occurrence is not None
    assert (occurrence.starts_at, occurrence.ends_at) == (
        utc(2024, 3, 31, 0, 0),
        utc(2024, 3, 31, 3, 0),
    )
    assert night.occurrence(utc(2024, 3, 31, 3, 0)) is None  # 05:00 CEST: three hours later


def test_a_start_in_the_skipped_hour_begins_with_the_offset_before_the_change() -> None:
    skipped = window(start="02:30")  # 02:30 does not exist in Berlin on 2024-03-31
    assert skipped.starts_on(date(2024, 3, 31)) == utc(2024, 3, 31, 1, 30)  # 03:30 CEST


def test_a_start_in_the_repeated_hour_means_its_first_occurrence() -> None:
    repeated = window(start="02:30")  # 02:30 happens twice in Berlin on 2024-10-27
    assert repeated.starts_on(date(2024, 10, 27)) == utc(2024, 10, 27, 0, 30)  # 02:30 CEST


def test_a_window_that_crosses_midnight_covers_the_next_day() -> None:
    late = window(weekdays=["sat"], start="23:00", duration="3h")  # Sat 2024-06-01 23:00 CEST
    assert late.occurrence(utc(2024, 6, 1, 23, 30)) is not None  # Sunday 01:30 local
    assert late.occurrence(utc(2024, 6, 2, 0, 0)) is None  # Sunday 02:00 local


def test_a_window_is_only_open_on_its_weekdays() -> None:
    weekdays = window(weekdays=["mon", "tue", "wed", "thu", "fri"], timezone="UTC")
    assert weekdays.occurrence(utc(2024, 6, 3, 2, 30)) is not None  # Monday
    assert weekdays.occurrence(utc(2024, 6, 1, 2, 30)) is None  # Saturday


def test_a_window_occurrence_is_a_silence_named_for_its_start() -> None:
    occurrence = window().occurrence(utc(2024, 4, 7, 1, 0))
    assert occurrence is not None
    assert occurrence.id == "redis-patching@2024-04-07T00:00:00Z"
    assert occurrence.comment == "maintenance window redis-patching"
    assert occurrence.matches(ALERT)


def test_a_window_only_mutes_what_its_matchers_select() -> None:
    muted = Silences(windows=(window(),))
    assert muted.is_silenced({**ALERT, "store": "warehouse"}, utc(2024, 4, 7, 1, 0)) is None


def test_an_unquoted_time_yaml_read_as_a_number_is_refused_with_a_hint() -> None:
    with pytest.raises(ValidationError, match='in quotes such as "02:00"'):
        window(start=750)


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ValidationError, match="expected an IANA time zone"):
        window(timezone="Europe/Atlantis")


def test_a_window_longer_than_a_week_is_refused() -> None:
    with pytest.raises(ValidationError, match="at most 7d"):
        window(duration="8d")


def test_window_names_are_unique() -> None:
    with pytest.raises(ValidationError, match="expected unique maintenance window names"):
        TypeAdapter(WindowList).validate_python([window(), window()])


def test_now_without_a_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="expected a time with a zone"):
        Silences().active(datetime(2024, 6, 1))  # noqa: DTZ001 - the point of the test
