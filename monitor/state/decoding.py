"""Recorded results back into `CheckResult`s: the inverse of `CheckResult.as_json()`, so that
a run's HTML report is rendered on demand from the state database (the daemon writes no report
file per run; the sidecar renders `/reports/{run_id}` when it is asked for).

The details are decoded by the check's kind (an `error` result's details are `{reason}` only);
a kind this module does not know, or a row that no longer reads, raises `DecodeError` with what
was expected and what was found.

One thing `as_json()` does not keep: the direction of a one-sided threshold that has only a
warn bound (`{warn, unit}`). It decodes as `max`; the report shows no direction for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Literal, cast

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
    SampleInfo,
    SchemaDriftDetails,
    Shown,
    SkewDetails,
    SkewExample,
    SodaDetails,
    Threshold,
)
from monitor.state.values import FrozenJSON, StoredResult

Doc = Mapping[str, FrozenJSON]
_UNITS = ("seconds", "ratio", "count", "score", "number")


class DecodeError(ValueError):
    """A recorded result that cannot be read back; the message says where and what."""


def check_result(stored: StoredResult) -> CheckResult:
    """The `CheckResult` that was recorded as `stored`. Raises `DecodeError`."""
    try:
        details = _details(stored.kind, stored.details)
        threshold = _threshold(stored.threshold)
    except (KeyError, TypeError, ValueError) as exc:
        raise DecodeError(
            f"result {stored.check} of run {stored.run_id}: expected the details of a "
            f"{stored.kind} check, found {dict(stored.details)!r} ({exc})"
        ) from exc
    return CheckResult(
        check=stored.check,
        kind=stored.kind,
        feature_view=stored.feature_view,
        feature=stored.feature,
        store=stored.store,
        target=stored.target,
        status=stored.status,
        severity=stored.severity,
        value=stored.value,
        threshold=threshold,
        sample_size=stored.sample_size,
        details=details,
        labels=MappingProxyType(dict(stored.labels)),
    )


def _threshold(doc: Doc) -> Threshold:
    unit = _str(doc, "unit")
    if unit not in _UNITS:
        raise ValueError(f"unknown unit {unit!r}")
    typed_unit = cast(Literal["seconds", "ratio", "count", "score", "number"], unit)
    two_sided = "warn_min" in doc or "warn_max" in doc or ("min" in doc and "max" in doc)
    if two_sided:
        return Threshold(
            direction="max",
            fail=_float(doc, "max"),
            warn=_float(doc, "warn_max"),
            unit=typed_unit,
            fail_min=_float(doc, "min"),
            warn_min=_float(doc, "warn_min"),
        )
    direction: Literal["max", "min"] = "min" if "min" in doc else "max"
    return Threshold(direction, _float(doc, direction), _float(doc, "warn"), typed_unit)


def _details(kind: str, doc: Doc) -> Details:
    if set(doc) == {"reason"}:
        return ErrorDetails(_str(doc, "reason"))
    decode = _DECODERS.get(kind)
    if decode is None:
        raise ValueError(f"unknown check kind {kind!r}")
    return decode(doc)


# Typed reading of one key. A missing key reads as None for the optional readers.


def _float(doc: Doc, key: str) -> float | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{key}: expected a number, found {value!r}")
    return value


def _number(doc: Doc, key: str) -> float:
    value = _float(doc, key)
    if value is None:
        raise TypeError(f"{key}: expected a number, found nothing")
    return value


def _int_or_none(doc: Doc, key: str) -> int | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{key}: expected an integer, found {value!r}")
    return value


def _int(doc: Doc, key: str) -> int:
    value = _int_or_none(doc, key)
    if value is None:
        raise TypeError(f"{key}: expected an integer, found nothing")
    return value


def _str_or_none(doc: Doc, key: str) -> str | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{key}: expected a string, found {value!r}")
    return value


def _str(doc: Doc, key: str) -> str:
    value = _str_or_none(doc, key)
    if value is None:
        raise TypeError(f"{key}: expected a string, found nothing")
    return value


def _time_or_none(doc: Doc, key: str) -> datetime | None:
    text = _str_or_none(doc, key)
    return None if text is None else datetime.fromisoformat(text)


def _time(doc: Doc, key: str) -> datetime:
    moment = _time_or_none(doc, key)
    if moment is None:
        raise TypeError(f"{key}: expected a time, found nothing")
    return moment


def _list(doc: Doc, key: str) -> tuple[FrozenJSON, ...]:
    value = doc.get(key)
    if not isinstance(value, tuple):
        raise TypeError(f"{key}: expected a list, found {value!r}")
    return value


def _object(value: FrozenJSON, what: str) -> Doc:
    if not isinstance(value, Mapping):
        raise TypeError(f"{what}: expected an object, found {value!r}")
    return value


def _names(doc: Doc, key: str) -> tuple[str, ...]:
    names = _list(doc, key)
    if not all(isinstance(name, str) for name in names):
        raise TypeError(f"{key}: expected a list of strings, found {names!r}")
    return cast(tuple[str, ...], names)


def _counts(doc: Doc, key: str) -> Mapping[str, int]:
    counts = _object(doc.get(key), key)
    return MappingProxyType({name: _int(counts, name) for name in counts})


def _shown(value: FrozenJSON) -> Shown:
    if isinstance(value, tuple | Mapping):
        raise TypeError(f"expected a scalar value, found {value!r}")
    return value


# The parts that several details share, flattened into them by `as_json()`.


def _sample(doc: Doc) -> SampleInfo | None:
    if "population" not in doc:
        return None
    return SampleInfo(
        population=_str(doc, "population"),
        asked=_int(doc, "asked"),
        found=_int(doc, "found"),
        decode_errors=_int(doc, "decode_errors"),
    )


def _sample_required(doc: Doc) -> SampleInfo:
    sample = _sample(doc)
    if sample is None:
        raise TypeError("population: expected the sample, found nothing")
    return sample


def _interval(doc: Doc) -> Interval | None:
    if "ci_low" not in doc:
        return None
    return Interval(_number(doc, "ci_low"), _number(doc, "ci_high"))


def _interval_required(doc: Doc) -> Interval:
    interval = _interval(doc)
    if interval is None:
        raise TypeError("ci_low: expected an interval, found nothing")
    return interval


# One decoder per kind of details.


def _freshness(doc: Doc) -> FreshnessDetails:
    return FreshnessDetails(
        p50=_float(doc, "p50"),
        p90=_float(doc, "p90"),
        p99=_float(doc, "p99"),
        max=_float(doc, "max"),
        newest=_time_or_none(doc, "newest_event_time"),
        sample=_sample(doc),
        future=_int_or_none(doc, "future") or 0,  # results recorded before it was counted: 0
        future_ahead=_float(doc, "future_ahead_seconds"),
        max_future_seconds=_float(doc, "max_future_seconds"),
    )


def _coverage(doc: Doc) -> CoverageDetails:
    return CoverageDetails(
        covered=_int(doc, "covered"),
        sampled=_int(doc, "sampled"),
        interval=_interval_required(doc),
        max_age_seconds=_number(doc, "max_age_seconds"),
        required=_names(doc, "required_features"),
        uncovered=_counts(doc, "uncovered"),
        sample=_sample_required(doc),
    )


def _null_rate(doc: Doc) -> NullRateDetails:
    sample = _sample(doc)
    return NullRateDetails(
        nulls=_int(doc, "nulls"),
        rows=_int(doc, "rows"),
        interval=_interval(doc),
        absent=_int(doc, "absent") if sample is not None else 0,
        window_seconds=_float(doc, "window_seconds"),
        sample=sample,
    )


def _schema_drift(doc: Doc) -> SchemaDriftDetails:
    retyped = []
    for item in _list(doc, "retyped"):
        change = _object(item, "retyped")
        retyped.append(
            Retyped(_str(change, "column"), _str(change, "expected"), _str(change, "found"))
        )
    baseline_at = _time_or_none(doc, "baseline_at")
    captured = doc.get("baseline_captured", False)
    return SchemaDriftDetails(
        added=_names(doc, "added"),
        removed=_names(doc, "removed"),
        retyped=tuple(retyped),
        counted_added=bool(doc.get("counted_added", True)),
        baseline_at=baseline_at,
        baseline_captured=bool(captured) if baseline_at is not None else False,
    )


def _late_arrivals(doc: Doc) -> LateArrivalDetails:
    return LateArrivalDetails(
        late=_int(doc, "late"),
        rows=_int(doc, "rows"),
        without_ingestion_time=_int(doc, "without_ingestion_time"),
        watermark_seconds=_number(doc, "watermark_seconds"),
        window_seconds=_number(doc, "window_seconds"),
        p50=_float(doc, "lateness_p50"),
        p99=_float(doc, "lateness_p99"),
        max=_float(doc, "lateness_max"),
    )


def _row_count(doc: Doc) -> RowCountDetails:
    return RowCountDetails(
        rows=_int(doc, "rows"),
        window_seconds=_number(doc, "window_seconds"),
        history=_int_or_none(doc, "history"),
        reference=_float(doc, "reference"),
        change=_float(doc, "change"),
        reason=_str_or_none(doc, "reason"),
    )


def _duplicates(doc: Doc) -> DuplicateDetails:
    return DuplicateDetails(
        duplicates=_int(doc, "duplicates"),
        rows=_int(doc, "rows"),
        distinct=_int(doc, "distinct"),
        keys=_names(doc, "keys"),
        window_seconds=_number(doc, "window_seconds"),
    )


def _range(doc: Doc) -> RangeDetails:
    return RangeDetails(
        rows=_int(doc, "rows"),
        nan=_int(doc, "nan"),
        infinite=_int(doc, "infinite"),
        negative=_int_or_none(doc, "negative"),
        below_min=_int_or_none(doc, "below_min"),
        above_max=_int_or_none(doc, "above_max"),
        min=_float(doc, "min"),
        max=_float(doc, "max"),
        mean=_float(doc, "mean"),
        min_value=_float(doc, "min_value"),
        max_value=_float(doc, "max_value"),
        window_seconds=_float(doc, "window_seconds"),
        interval=_interval(doc),
        sample=_sample(doc),
    )


def _skew_example(value: FrozenJSON) -> SkewExample:
    doc = _object(value, "examples")
    differences = []
    for item in _list(doc, "differences"):
        diff = _object(item, "differences")
        differences.append(
            (_str(diff, "feature"), _shown(diff.get("online")), _shown(diff.get("offline")))
        )
    return SkewExample(
        key=tuple(_shown(part) for part in _list(doc, "key")),
        online_time=_time(doc, "online_event_time"),
        offline_time=_time(doc, "offline_event_time"),
        differences=tuple(differences),
    )


def _skew(doc: Doc) -> SkewDetails:
    return SkewDetails(
        mismatched=_int(doc, "mismatched"),
        compared=_int(doc, "compared"),
        without_offline_row=_int(doc, "without_offline_row"),
        interval=_interval_required(doc),
        per_feature=_counts(doc, "per_feature"),
        examples=tuple(_skew_example(item) for item in _list(doc, "examples")),
        abs_tol=_number(doc, "abs_tol"),
        rel_tol=_number(doc, "rel_tol"),
        source=_str(doc, "offline_source"),
        sample=_sample_required(doc),
    )


def _drift(doc: Doc) -> DriftDetails:
    bins = []
    for item in _list(doc, "bins"):
        one = _object(item, "bins")
        bins.append(DriftBin(_str(one, "bin"), _number(one, "reference"), _number(one, "current")))
    categorical = doc.get("categorical")
    if not isinstance(categorical, bool):
        raise TypeError(f"categorical: expected true or false, found {categorical!r}")
    return DriftDetails(
        psi=_number(doc, "psi"),
        ks=_float(doc, "ks"),
        categorical=categorical,
        reference_rows=_int(doc, "reference_rows"),
        current_rows=_int(doc, "current_rows"),
        reference_since=_time(doc, "reference_since"),
        reference_until=_time(doc, "reference_until"),
        epsilon=_number(doc, "epsilon"),
        bins=tuple(bins),
        sample=_sample(doc),
        current_since=_time_or_none(doc, "current_since"),
        current_until=_time_or_none(doc, "current_until"),
    )


def _anomaly(doc: Doc) -> AnomalyDetails:
    return AnomalyDetails(
        of=_str(doc, "of"),
        current=_float(doc, "current"),
        current_at=_time_or_none(doc, "current_at"),
        history=_int(doc, "history"),
        min_history=_int(doc, "min_history"),
        median=_float(doc, "median"),
        mad=_float(doc, "mad"),
        z=_float(doc, "z"),
        scale=_str_or_none(doc, "scale"),
        direction=_str(doc, "direction"),
        reason=_str_or_none(doc, "reason"),
    )


def _soda(doc: Doc) -> SodaDetails:
    diagnostics = _object(doc.get("diagnostics"), "diagnostics")
    return SodaDetails(
        soda_check=_str(doc, "soda_check"),
        name=_str_or_none(doc, "name"),
        type=_str(doc, "type"),
        column=_str_or_none(doc, "column"),
        outcome=_str(doc, "outcome"),
        threshold=_str(doc, "threshold"),
        diagnostics=MappingProxyType(
            {key: _diagnostic(value, key) for key, value in diagnostics.items()}
        ),
        dataset=_str(doc, "dataset"),
        contract_line=_int_or_none(doc, "contract_line"),
        errors=_names(doc, "errors"),
        soda_version=_str(doc, "soda_version"),
    )


def _diagnostic(value: FrozenJSON, key: str) -> float | int | str:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"diagnostics.{key}: expected a number or a string, found {value!r}")
    return value


_DECODERS: Mapping[str, Callable[[Doc], Details]] = MappingProxyType(
    {
        "freshness": _freshness,
        "coverage": _coverage,
        "null_rate": _null_rate,
        "schema_drift": _schema_drift,
        "late_arrivals": _late_arrivals,
        "row_count": _row_count,
        "duplicates": _duplicates,
        "range": _range,
        "skew": _skew,
        "distribution_drift": _drift,
        "anomaly": _anomaly,
        "soda": _soda,
    }
)
