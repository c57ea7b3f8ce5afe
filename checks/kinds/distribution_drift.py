"""Distribution drift: the population stability index (PSI) of one feature between a reference
window of the offline store and the current values (DESIGN.md section 3): the online sample, or,
on target offline, a random sample of a recent window of the offline store (`current`, default
the last day before the scheduled time; as many rows as the reference, drawn the same way).

The reference is a random sample of up to `reference_sample` rows whose event time lies in the
window (drawn by the engine, `ORDER BY random() LIMIT n`: the transfer is bounded, and the bins
are computed here from the sample, identically on every engine). Nulls and NaN are left out of
both sides (they are null_rate's concern).

Numeric features (int, float): `bins` quantile bins of the reference. The edges are its
quantiles at k / bins, k = 1 .. bins - 1, by linear interpolation between order statistics
(h = (n - 1) q; numpy's default), repeated edges merged; bin 1 is (-inf, e1], bin i (e(i-1), ei],
the last (e(last), +inf). Details also give the two-sample Kolmogorov-Smirnov statistic
KS = max over x of |F_reference(x) - F_current(x)| (the empirical distribution functions).

Categorical features (string, bool): the `top_k` most frequent categories of the reference
(ties by name) each a bin, every other category (one unseen in the reference included) `other`.

    PSI = sum over bins of (c - r) * ln(c / r)

with r and c the fractions of the reference and current values in the bin, each raised to at
least EPSILON = 0.0001 so that an empty bin adds a large but finite term (no renormalisation).
Rules of thumb: below 0.1 stable, 0.1 to 0.25 a moderate shift, above 0.25 a major shift (the
default `warn` and `max`).
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from checks.kinds.base import Features, Judge, Kind, build, error, narrow, sample_info, undeclared
from checks.model import DistributionDriftCheck, FeatureView, Target, dtype_family
from checks.observation import DriftObservation, FeatureState, FeatureValue, ReferenceSample
from checks.planned import PlannedCheck
from checks.result import CheckResult, DriftBin, DriftDetails, Threshold

EPSILON = 1e-4
NUMERIC = frozenset({"int", "float"})
CATEGORICAL = frozenset({"string", "bool"})
OTHER = "other"


def threshold(check: DistributionDriftCheck) -> Threshold:
    return Threshold("max", check.max, check.warn, "score")


def quantile(ordered: Sequence[float], q: float) -> float:
    """The q-quantile of sorted values, interpolating linearly between order statistics."""
    h = (len(ordered) - 1) * q
    low = math.floor(h)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (h - low) * (ordered[high] - ordered[low])


def edges(reference: Sequence[float], bins: int) -> tuple[float, ...]:
    """The inner bin edges: the reference's quantiles at k / bins, repeated ones merged."""
    ordered = sorted(reference)
    return tuple(sorted({quantile(ordered, k / bins) for k in range(1, bins)}))


def ks(reference: Sequence[float], current: Sequence[float]) -> float:
    """The two-sample Kolmogorov-Smirnov statistic: max |F_reference - F_current|."""
    a, b = sorted(reference), sorted(current)
    return max(
        abs(bisect.bisect_right(a, x) / len(a) - bisect.bisect_right(b, x) / len(b))
        for x in {*a, *b}
    )


def numeric_bins(
    reference: Sequence[float], current: Sequence[float], bins: int
) -> tuple[DriftBin, ...]:
    inner = edges(reference, bins)
    counts_ref, counts_cur = [0] * (len(inner) + 1), [0] * (len(inner) + 1)
    for value in reference:
        counts_ref[bisect.bisect_left(inner, value)] += 1
    for value in current:
        counts_cur[bisect.bisect_left(inner, value)] += 1
    bounds = [-math.inf, *inner, math.inf]
    return tuple(
        DriftBin(
            f"({bounds[i]:g}, {bounds[i + 1]:g}]",
            counts_ref[i] / len(reference),
            counts_cur[i] / len(current),
        )
        for i in range(len(counts_ref))
    )


def category_bins(
    reference: Sequence[str], current: Sequence[str], top_k: int
) -> tuple[DriftBin, ...]:
    ranked = sorted(Counter(reference).items(), key=lambda item: (-item[1], item[0]))
    kept = [name for name, _ in ranked[:top_k]]
    ref = Counter(v if v in kept else OTHER for v in reference)
    cur = Counter(v if v in kept else OTHER for v in current)
    labels = kept + ([OTHER] if ref[OTHER] or cur[OTHER] else [])
    return tuple(DriftBin(n, ref[n] / len(reference), cur[n] / len(current)) for n in labels)


def psi_of_bins(bins: Sequence[DriftBin]) -> float:
    """PSI over bins given as fractions, each floored at EPSILON."""
    total = 0.0
    for b in bins:
        r, c = max(b.reference, EPSILON), max(b.current, EPSILON)
        total += (c - r) * math.log(c / r)
    return total


def evaluate(planned: PlannedCheck, observation: DriftObservation, at: datetime) -> CheckResult:  # noqa: ARG001 - every kind's evaluate takes (planned, observation, at); this one needs no time
    check = narrow(planned, DistributionDriftCheck)
    limit = threshold(check)
    feature = planned.feature or ""
    family = dtype_family(planned.view.features.get(feature, "string"))
    if family not in NUMERIC | CATEGORICAL:
        return error(
            planned, limit, f"distribution drift compares numbers and categories, not {family}"
        )
    drawn = observation.current
    if isinstance(drawn, ReferenceSample):
        current_raw: Sequence[FeatureValue] = drawn.values.get(feature, ())
    else:
        current_raw = [
            e.reading(feature).value
            for e in drawn.entities
            if e.present and e.reading(feature).state is FeatureState.VALUE
        ]
    reference_raw = observation.reference.values.get(feature, ())
    convert = _number if family in NUMERIC else (_flag if family == "bool" else _category)
    current = [v for v in map(convert, current_raw) if v is not None]
    reference = [v for v in map(convert, reference_raw) if v is not None]
    ref = observation.reference
    if not reference or not current:
        empty = (
            "reference window"
            if not reference
            else ("current window" if isinstance(drawn, ReferenceSample) else "online sample")
        )
        return error(planned, limit, f"no values of {feature} in the {empty} to compare")
    if family in NUMERIC:
        numbers_ref = [float(v) for v in reference]
        numbers_cur = [float(v) for v in current]
        bins = numeric_bins(numbers_ref, numbers_cur, check.bins)
        statistic: float | None = ks(numbers_ref, numbers_cur)
    else:
        bins = category_bins([str(v) for v in reference], [str(v) for v in current], check.top_k)
        statistic = None
    value = psi_of_bins(bins)
    details = DriftDetails(
        psi=value,
        ks=statistic,
        categorical=family in CATEGORICAL,
        reference_rows=len(reference),
        current_rows=len(current),
        reference_since=ref.since,
        reference_until=ref.until,
        epsilon=EPSILON,
        bins=bins,
        sample=None if isinstance(drawn, ReferenceSample) else sample_info(drawn),
        current_since=drawn.since if isinstance(drawn, ReferenceSample) else None,
        current_until=drawn.until if isinstance(drawn, ReferenceSample) else None,
    )
    return build(planned, limit, value, details, sample_size=len(current))


def _number(value: FeatureValue) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _category(value: FeatureValue) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _flag(value: FeatureValue) -> str | None:
    """A boolean, also as an engine without booleans stores it (SQLite: 0 and 1)."""
    if isinstance(value, bool | int):
        return "true" if value else "false"
    return _category(value)


def targets(check: DistributionDriftCheck) -> tuple[Target, ...]:
    """The online sample against the reference, unless a `current` offline window is given."""
    return ("offline",) if check.current is not None else ("online",)


DRIFT_FAMILIES = frozenset({"int", "float", "string", "bool"})


def drift_features(view: FeatureView) -> list[str]:
    """The features distribution drift compares when a check names none: numbers and
    categories (strings, booleans)."""
    return [name for name, dtype in view.features.items() if dtype_family(dtype) in DRIFT_FAMILIES]


def features(check: DistributionDriftCheck, view: FeatureView) -> tuple[str | None, ...]:
    """Its own feature, or every feature of the view drift can compare."""
    return (check.feature,) if check.feature else tuple(drift_features(view))


KIND = Kind(
    name="distribution_drift",
    model=DistributionDriftCheck,
    targets=targets,
    threshold=threshold,
    judges=(Judge(DriftObservation, evaluate),),
    details=DriftDetails,
    compares=True,
    offline_need=lambda _: "the reference window",
    per_feature=Features(features, lambda check: check.feature is None),
    problems=lambda check, view, path: undeclared(view, path, "feature", check.feature),
)
