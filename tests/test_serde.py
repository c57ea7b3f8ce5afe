"""One serializer, both ways: every value featmon keeps as JSON reads back equal from the JSON it
writes (property tests over every kind of details, runs and the alert values), the JSON is the
shape an earlier featmon wrote, what that version left in a state database still reads, and a run
recorded in a real state database reads back as the run the checks returned."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError

from alerts.codec import (
    CodecError,
    group_from_json,
    group_to_json,
    notification_from_json,
    notification_to_json,
    read,
    record_from_json,
    record_to_json,
)
from alerts.lifecycle import AlertRecord
from alerts.model import AlertEvent, AlertState, Notification
from alerts.report import render_report
from alerts.routing import Group
from checks.kinds import KINDS
from checks.result import (
    AnomalyDetails,
    CheckResult,
    CoverageDetails,
    Details,
    DriftBin,
    DriftDetails,
    DuplicateDetails,
    ErrorDetails,
    FreshnessDetails,
    Interval,
    LateArrivalDetails,
    NullRateDetails,
    RangeDetails,
    Retyped,
    RowCountDetails,
    RunResult,
    SampleInfo,
    SchemaDriftDetails,
    SkewDetails,
    SkewExample,
    SodaDetails,
    Status,
    Threshold,
)
from checks.serde import from_json, to_json
from monitor.state import StateError, StateStore, decoding, rows
from tests import stored_samples as samples

STORED = json.loads((Path(__file__).parent / "data" / "stored_v1.json").read_text())

KIND_OF = {kind.details: kind.name for kind in KINDS}  # an error's details: any kind

# -- strategies ---------------------------------------------------------------------------------

text = st.text(max_size=8)
names = st.tuples(text) | st.tuples(text, text)
counts = st.integers(0, 10**9)
number = st.floats(-1e12, 1e12)  # a duration far beyond any (timedelta ends at 1e9 days)
maybe_number = st.none() | number
maybe_count = st.none() | counts
offsets = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))])
# hypothesis takes naive bounds; `timezones` gives each drawn time its offset
moment = st.datetimes(
    min_value=datetime(1971, 1, 1),  # noqa: DTZ001 - a naive bound, as hypothesis wants
    max_value=datetime(2200, 1, 1),  # noqa: DTZ001 - a naive bound, as hypothesis wants
    timezones=offsets,
)
maybe_moment = st.none() | moment
text_map = st.dictionaries(text, text, max_size=3).map(MappingProxyType)
count_map = st.dictionaries(text, counts, max_size=3).map(MappingProxyType)
shown = st.none() | st.booleans() | st.integers() | number | text

sample = st.builds(SampleInfo, text, counts, counts, counts)
interval = st.builds(Interval, number, number)

DETAILS: Mapping[type[Details], st.SearchStrategy[Any]] = {
    FreshnessDetails: st.builds(
        FreshnessDetails, maybe_number, maybe_number, maybe_number, maybe_number,
        newest=maybe_moment, sample=st.none() | sample, future=counts,
        future_ahead=maybe_number, max_future_seconds=maybe_number,
    ),
    CoverageDetails: st.builds(
        CoverageDetails, counts, counts, interval, number, st.tuples(text), count_map, sample
    ),
    NullRateDetails: st.builds(
        NullRateDetails, counts, counts, st.none() | interval, absent=counts,
        window_seconds=maybe_number, sample=st.none() | sample,
    ),
    SchemaDriftDetails: st.builds(
        SchemaDriftDetails, names, names, st.lists(st.builds(Retyped, text, text, text)).map(tuple),
        counted_added=st.booleans(), baseline_at=maybe_moment, baseline_captured=st.booleans(),
    ),
    LateArrivalDetails: st.builds(
        LateArrivalDetails, counts, counts, counts, number, number, maybe_number, maybe_number,
        maybe_number,
    ),
    RowCountDetails: st.builds(
        RowCountDetails, counts, number, history=maybe_count, reference=maybe_number,
        change=maybe_number, reason=st.none() | text,
    ),
    DuplicateDetails: st.builds(DuplicateDetails, counts, counts, counts, names, number),
    RangeDetails: st.builds(
        RangeDetails, counts, counts, counts, maybe_count, maybe_count, maybe_count,
        maybe_number, maybe_number, maybe_number, maybe_number, maybe_number,
        window_seconds=maybe_number, interval=st.none() | interval, sample=st.none() | sample,
    ),
    SkewDetails: st.builds(
        SkewDetails, counts, counts, counts, interval, count_map,
        st.lists(
            st.builds(
                SkewExample, st.lists(shown, max_size=3).map(tuple), moment, moment,
                st.lists(st.tuples(text, shown, shown), max_size=3).map(tuple),
            ),
            max_size=2,
        ).map(tuple),
        number, number, text, sample,
    ),
    DriftDetails: st.builds(
        DriftDetails, number, maybe_number, st.booleans(), counts, counts, moment, moment, number,
        st.lists(st.builds(DriftBin, text, number, number), max_size=3).map(tuple),
        sample=st.none() | sample, current_since=maybe_moment, current_until=maybe_moment,
    ),
    AnomalyDetails: st.builds(
        AnomalyDetails, text, maybe_number, maybe_moment, counts, counts, maybe_number,
        maybe_number, maybe_number, st.none() | text, text, reason=st.none() | text,
    ),
    SodaDetails: st.builds(
        SodaDetails, text, st.none() | text, text, st.none() | text, text, text,
        st.dictionaries(text, st.integers() | number | text, max_size=3).map(MappingProxyType),
        text, maybe_count, errors=st.lists(text, max_size=2).map(tuple), soda_version=text,
    ),
    ErrorDetails: st.builds(ErrorDetails, text),
}  # fmt: skip

threshold = st.builds(
    Threshold,
    st.sampled_from(["max", "min"]),
    maybe_number,
    maybe_number,
    st.sampled_from(["seconds", "ratio", "count", "score", "number"]),
    fail_min=maybe_number,
    warn_min=maybe_number,
)


def kept(details: Details) -> bool:
    """False for the combinations evaluation never builds, whose JSON leaves out what they
    hold: an `absent` count without a sample, a captured baseline without its time, a
    reference or change without the history, an offline window beside an online sample."""
    match details:
        case NullRateDetails(absent=absent, sample=None):
            return absent == 0
        case SchemaDriftDetails(baseline_at=None, baseline_captured=captured):
            return not captured
        case RowCountDetails(history=None, reference=reference, change=change):
            return reference is None and change is None
        case DriftDetails(sample=SampleInfo(), current_since=since, current_until=until):
            return since is None and until is None
    return True


def read_back(t: Threshold) -> bool:
    """False where the JSON of the check file does not tell the threshold apart: a one-sided
    threshold without a fail bound pointing down (`{warn, unit}` reads back as `max`), and a
    two-sided one with only its lower fail bound (`{min, unit}` reads back one-sided `min`,
    which judges every value the same)."""
    if t.two_sided:  # direction max for its upper side, as evaluation builds them
        return t.direction == "max" and (t.fail, t.warn, t.warn_min) != (None, None, None)
    return t.fail is not None or t.direction == "max"


def check_result(details: Details, threshold: Threshold, labels: Mapping[str, str]) -> CheckResult:
    return CheckResult(
        check="v.c@online", kind=KIND_OF.get(type(details), "freshness"),
        feature_view="v", feature=None, store="s", target="online", status=Status.WARN,
        severity="P3", value=0.25, threshold=threshold, sample_size=None, details=details,
        labels=labels,
    )  # fmt: skip


def through_json(value: object) -> object:
    """`value` written, through `json.dumps` and `json.loads` as the database keeps it, and
    read back as its type."""
    return from_json(type(value), json.loads(json.dumps(to_json(value))))


def test_every_details_type_of_the_registry_is_covered_here() -> None:
    """The property tests below draw the details of every kind the registry lists, and an
    error's: a new kind's details join them here."""
    assert set(DETAILS) == {*KIND_OF, ErrorDetails}


# -- round trips --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", DETAILS, ids=lambda kind: kind.__name__)
@given(data=st.data())
def test_every_kind_of_details_reads_back_equal_from_its_json(
    kind: type[Details], data: st.DataObject
) -> None:
    """Details of each type, written as JSON and read back as the same type, are equal."""
    details = data.draw(DETAILS[kind])
    assume(kept(details))
    assert through_json(details) == details


@pytest.mark.parametrize("kind", DETAILS, ids=lambda kind: kind.__name__)
@given(data=st.data())
def test_a_result_reads_back_with_the_details_of_its_kind(
    kind: type[Details], data: st.DataObject
) -> None:
    """A result's details carry no tag in their JSON, yet read back as the type of its kind
    (or an error's), with the threshold and the labels."""
    details, limits = data.draw(DETAILS[kind]), data.draw(threshold)
    assume(kept(details) and read_back(limits))
    result = check_result(details, limits, data.draw(text_map))
    back = through_json(result)
    assert back == result
    assert isinstance(back, CheckResult)
    assert type(back.details) is kind


@given(st.lists(st.sampled_from(list(DETAILS)), max_size=4).flatmap(
    lambda kinds: st.tuples(*(DETAILS[k] for k in kinds))
), moment, moment, moment)  # fmt: skip
def test_a_run_reads_back_equal_from_its_json(
    details: tuple[Details, ...], scheduled: datetime, started: datetime, finished: datetime
) -> None:
    """A run of any results reads back equal; its status and counts are written beside."""
    assume(all(kept(d) for d in details))
    results = tuple(check_result(d, Threshold("max", 1.0, None, "ratio"), {}) for d in details)
    run = RunResult("r1", scheduled, started, finished, results)
    doc = to_json(run)
    assert isinstance(doc, dict)
    assert (doc["status"], doc["counts"]) == (run.status.value, run.counts())
    assert through_json(run) == run


events = st.builds(
    AlertEvent, text_map, text_map, st.sampled_from(AlertState), moment, maybe_moment, text,
    st.none() | text,
)  # fmt: skip


@given(
    st.builds(
        AlertRecord, text_map, st.sampled_from(AlertState), counts, counts, moment,
        maybe_moment, maybe_moment, maybe_moment, moment, text_map, st.none() | text,
    ),
    st.builds(
        Notification, text, text, text_map, st.lists(events, max_size=3).map(tuple), moment,
        st.none() | text, text_map,
    ),
    st.builds(
        Group, text, text, text_map, st.timedeltas(timedelta(milliseconds=1), timedelta(days=366)),
        maybe_moment, st.lists(events, max_size=2).map(tuple), maybe_moment,
        st.frozensets(text, max_size=3),
    ),
)  # fmt: skip
def test_the_alert_values_read_back_equal_with_their_offsets(
    record: AlertRecord, notification: Notification, group: Group
) -> None:
    """An alert record, a notification and a group read back equal through the codec, each
    time with the offset it was written with."""
    assert record_from_json(json.loads(json.dumps(record_to_json(record)))) == record
    assert notification_from_json(json.loads(json.dumps(notification_to_json(notification)))) == (
        notification
    )
    back = group_from_json(json.loads(json.dumps(group_to_json(group))))
    assert back == group
    assert back.flush_at is None or back.flush_at.utcoffset() == group.flush_at.utcoffset()  # type: ignore[union-attr]


def test_a_run_with_non_finite_numbers_is_valid_json() -> None:
    """NaN and infinity, which JSON has no spelling for, are written as null (the printed
    `featmon check --format json` used to carry a bare `NaN`)."""
    odd = RangeDetails(3, 1, 1, None, None, None, float("nan"), float("inf"), None, None, None)
    result = check_result(odd, Threshold("max", 0.0, None, "count"), {})
    doc = to_json(RunResult("r1", samples.T0, samples.T0, samples.T0, (result,)))
    details = json.loads(json.dumps(doc, allow_nan=False))["results"][0]["details"]
    assert (details["min"], details["max"]) == (None, None)


# -- the JSON of an earlier version -------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(STORED["results"]))
def test_a_result_recorded_by_an_earlier_version_reads_back_equal(name: str) -> None:
    """A result row written by featmon 0.1 (its columns and JSON) reads back as the result."""
    row = dict(STORED["results"][name])
    row["scheduled_at"] = datetime.fromisoformat(row["scheduled_at"])
    assert decoding.check_result(rows.to_result(row)) == samples.RESULTS[name]


def test_a_result_is_written_as_an_earlier_version_wrote_it() -> None:
    """The rows of a run are what featmon 0.1 wrote for it, column for column, and the
    `model` column of schema 6, None for a view's result."""
    written = rows.result_rows(samples.RUN)
    for name, row in zip(samples.RESULTS, written, strict=True):
        assert row["model"] is None
        shown = {k: v for k, v in row.items() if k != "model"}
        assert {**shown, "scheduled_at": row["scheduled_at"].isoformat()} == STORED["results"][name]


def test_a_run_shows_the_json_of_an_earlier_version_and_reads_it_back() -> None:
    """`featmon check --format json` prints what featmon 0.1 printed for the same run, and
    that document reads back as the run."""
    assert to_json(samples.RUN) == STORED["run_json"]
    assert from_json(RunResult, STORED["run_json"]) == samples.RUN


@pytest.mark.parametrize(
    ("group", "values", "write", "read"),
    [
        ("records", samples.RECORDS, record_to_json, record_from_json),
        ("events", samples.EVENTS, to_json, lambda doc: read(AlertEvent, doc, "event")),
        ("notifications", samples.NOTIFICATIONS, notification_to_json, notification_from_json),
        ("groups", samples.GROUPS, group_to_json, group_from_json),
    ],
)
def test_alert_state_of_an_earlier_version_reads_back_equal(
    group: str,
    values: Mapping[str, object],
    write: Callable[[Any], object],
    read: Callable[[Any], object],
) -> None:
    """Alert records, events, outbox notifications and groups stored by featmon 0.1 read back
    as the values, and are written again as that version wrote them."""
    for name, value in values.items():
        assert read(STORED[group][name]) == value
        assert write(value) == STORED[group][name]


# -- through a state database -------------------------------------------------------------------


def test_a_recorded_run_reads_back_as_the_run_the_checks_returned(state: StateStore) -> None:
    """A run of every sample result (each kind of details in its online and offline forms, a
    freshness with future values, an error with its reason), recorded in a real state database
    in an order other than their names' and read back, equals the run, its results in the order
    evaluation gave them: what a report is rendered from on demand."""
    run = replace(samples.RUN, results=samples.RUN.results[::-1])
    state.record_run(run)
    assert state.recorded_run(run.run_id) == run


def test_a_warn_only_threshold_renders_as_it_was(state: StateStore) -> None:
    """A threshold with only a warn bound loses its direction in the record, and the report,
    which shows no direction for it, reads the same."""
    warn_only = Threshold("min", None, 0.9, "ratio")
    run = replace(samples.RUN, results=(replace(samples.RESULTS["coverage"], threshold=warn_only),))
    state.record_run(run)
    recorded = state.recorded_run(run.run_id)
    assert recorded is not None
    assert render_report(recorded) == render_report(run)


def test_a_run_never_recorded_is_none(state: StateStore) -> None:
    """Reading back a run id the database does not hold gives None."""
    assert state.recorded_run("20000101T000000Z-none") is None


def test_a_recorded_result_of_an_unknown_kind_is_a_state_error(state: StateStore) -> None:
    """A row this featmon cannot read back names the check and what was expected."""
    run = replace(samples.RUN, results=(replace(samples.RESULTS["freshness_online"], kind="psi"),))
    state.record_run(run)
    with pytest.raises(StateError, match="expected the details of a psi check"):
        state.recorded_run(run.run_id)


# -- what does not read -------------------------------------------------------------------------


def test_details_of_an_unknown_kind_do_not_read() -> None:
    """A result of a kind the registry does not know is refused (its details have no type)."""
    doc = to_json(samples.RESULTS["duplicates"])
    assert isinstance(doc, dict)
    with pytest.raises(ValidationError, match="expected the details of a check kind featmon"):
        from_json(CheckResult, {**doc, "kind": "psi"})


def test_a_stored_notification_with_a_bad_state_names_the_field_not_the_value() -> None:
    """A notification whose alert has an unknown state is a `CodecError` naming where."""
    doc = notification_to_json(samples.NOTIFICATIONS["notification"])
    doc["alerts"][0]["state"] = "secret-token-xyz"  # type: ignore[index, call-overload]
    with pytest.raises(CodecError, match=r"notification\.alerts\[0\]\.state") as caught:
        notification_from_json(doc)
    assert "secret-token-xyz" not in str(caught.value)


def test_a_group_of_zero_interval_does_not_read() -> None:
    """A group's interval must be above 0 seconds."""
    doc = group_to_json(samples.GROUPS["group_idle"]) | {"group_interval": 0}
    with pytest.raises(CodecError, match=r"group\.group_interval"):
        group_from_json(doc)
