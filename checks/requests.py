"""A model's requests judged from what its views' online stores hold now: pure, no I/O, no clock.

The rules are those of a serving log (DESIGN.md section 3, "model coverage and freshness"), with
the scheduled time as every request's time, since the sample is probed now. Each value of a
request (one feature of one view) is judged once, under the first reason that holds:

- `absent`: the store had no value: the entity is missing from the view's store, the feature
  was never written or did not decode, or the value has no time (or one at or before the epoch,
  which Feast writes for a value it lacked: never a very old value);
- `null`: the value is null or NaN;
- `future`: its time is more than `max_future` after the request's;
- `stale`: it is older than its view's max age;
- otherwise it is usable. A request is covered when every one of its values is.

A value's age is `max(0, request time - value time)`, for every value with a time that is not
`future` (a null value with a time has an age). A view's `reasons` always hold the four
reasons of `MISS_REASONS`, zero where no request missed for one, so that every observation has
one shape.

Requests that ask a view for the same entity are served the same values: each view's distinct
entities (`view_keys`, in the order they are read) are judged once, and counted once per
request that asks for them.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Literal

from checks.observation import (
    MISS_REASONS,
    NO_AGES,
    Ages,
    EntityReading,
    EntityValue,
    FeatureMisses,
    FeatureState,
    ModelObservation,
    ViewMisses,
)
from checks.served import ServedModel, ServedView
from checks.stats import nearest_rank

RequestKey = tuple[EntityValue, ...]
"""One request: a value per join key of its model, in the order of `ServedModel.join_keys`
(projected onto one view: a value per join key of the view, in the view's order)."""

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Judged:
    """One value at one request's time: why it is not usable (None: usable), and its age in
    seconds (None for a value with no time, or one from the future)."""

    reason: str | None
    age: float | None


ABSENT = Judged("absent", None)


def judge_value(
    value_time: datetime | None, null: bool, at: datetime, max_age: float, max_future: float
) -> Judged:
    """A value the store holds, written at `value_time` and `null` (null or NaN) or not,
    served at `at`; `max_age` and `max_future` in seconds (the module's rules)."""
    if value_time is None or value_time <= EPOCH:
        return ABSENT
    age = (at - value_time).total_seconds()
    if -age > max_future:
        return Judged("null" if null else "future", None)
    age = max(0.0, age)
    if null:
        return Judged("null", age)
    return Judged("stale" if age > max_age else None, age)


@dataclass(frozen=True, slots=True)
class Served:
    """What one entity of one view serves every request that asks for it: each feature's
    reason (None: usable, in the order of the view's features), every reason, and the ages
    of its values (and the oldest, None when no value has one)."""

    reasons: tuple[str | None, ...]
    missed: frozenset[str]
    ages: tuple[float, ...]
    oldest: float | None


def serve(entity: EntityReading, view: ServedView, at: datetime, max_future: float) -> Served:
    """The served features of `view` for one entity as its online store holds them now. The
    features of an entity mostly share one time (Redis keeps one a view; Feast's SQL stores
    write an entity's features together): each distinct (time, null) is judged once."""
    if not entity.present:
        return _summed([ABSENT] * len(view.features))
    max_age = view.max_age.total_seconds()
    shared = entity.event_time
    seen: dict[tuple[datetime | None, bool], Judged] = {}
    judged = []
    for name in view.features:
        reading = entity.reading(name)
        if reading.state is FeatureState.ABSENT or reading.state is FeatureState.UNDECODABLE:
            judged.append(ABSENT)
            continue
        value = (reading.event_time or shared, reading.is_null)  # per feature, else the entity's
        one = seen.get(value)
        if one is None:
            one = seen[value] = judge_value(*value, at, max_age, max_future)
        judged.append(one)
    return _summed(judged)


def _summed(judged: list[Judged]) -> Served:
    reasons = tuple(j.reason for j in judged)
    ages = tuple(j.age for j in judged if j.age is not None)
    missed = frozenset(r for r in reasons if r is not None)
    return Served(reasons, missed, ages, max(ages, default=None))


Projection = Callable[[RequestKey], RequestKey]


def projections(served: ServedModel) -> list[tuple[ServedView, Projection]]:
    """Each view of the model, with what projects a request onto its join keys."""
    keys = served.join_keys
    return [
        (view, _projection(tuple(keys.index(key) for key in view.join_keys)))
        for view in served.views
    ]


def _projection(positions: tuple[int, ...]) -> Projection:
    if len(positions) == 1:  # itemgetter of one position gives the value, not a tuple
        (only,) = positions
        return lambda request: (request[only],)
    pick: Projection = operator.itemgetter(*positions)
    return pick


def view_keys(served: ServedModel, requests: Sequence[RequestKey]) -> dict[str, list[RequestKey]]:
    """Each view's distinct entities among the requests, in the order first asked for."""
    return {
        view.name: list(dict.fromkeys(map(project, requests)))
        for view, project in projections(served)
    }


@dataclass(frozen=True)
class Sample:
    """Where a sample of requests came from, as its observation says."""

    store: str  # the offline store the query ran on; "" for an ids file
    population: Literal["query", "ids_file"]
    asked: int  # the sample size asked for: the population may hold fewer requests


def observe(
    served: ServedModel,
    requests: Sequence[RequestKey],
    entities: Mapping[str, Sequence[EntityReading]],
    at: datetime,
    sample: Sample,
) -> ModelObservation:
    """The observation of `requests`, each served at `at` what `entities` hold: per view, a
    reading of each of its `view_keys`, in the same order."""
    max_future = served.model.max_future.total_seconds()
    columns: dict[str, list[Served]] = {}
    for view, project in projections(served):
        projected = list(map(project, requests))
        keys = dict.fromkeys(projected)  # as `view_keys`
        readings = entities[view.name]
        if len(readings) != len(keys):
            raise ValueError(
                f"view {view.name}: expected a reading of each of its {len(keys)} distinct "
                f"entities, found {len(readings)}"
            )
        by_key = {
            key: serve(entity, view, at, max_future)
            for key, entity in zip(keys, readings, strict=True)
        }
        columns[view.name] = [by_key[key] for key in projected]
    return _tally(served, len(requests), columns, sample)


def _tally(
    served: ServedModel, count: int, columns: Mapping[str, Sequence[Served]], sample: Sample
) -> ModelObservation:
    """Sum what each request was served (`columns`: per view, one `Served` per request)."""
    names = [view.name for view in served.views]
    uncovered = dict.fromkeys(names, 0)
    only = dict.fromkeys(names, 0)
    reasons = {name: dict.fromkeys(MISS_REASONS, 0) for name in names}
    features = {ref: dict.fromkeys(MISS_REASONS, 0) for ref in served.references}
    view_ages: dict[str, list[float]] = {name: [] for name in names}
    request_ages: list[float] = []
    covered = 0
    for index in range(count):
        row = [(view, columns[view.name][index]) for view in served.views]
        missing = [view.name for view, got in row if got.missed]
        if not missing:
            covered += 1
        for name in missing:
            uncovered[name] += 1
        if len(missing) == 1:
            only[missing[0]] += 1
        for view, got in row:
            _count_misses(view, got, reasons[view.name], features)
            view_ages[view.name].extend(got.ages)
        oldest = [got.oldest for _, got in row if got.oldest is not None]
        if oldest:
            request_ages.append(max(oldest))
    return ModelObservation(
        source="requests",
        store=sample.store,
        requests=count,
        covered=covered,
        views=MappingProxyType(
            {
                name: ViewMisses(
                    uncovered[name], only[name], MappingProxyType(reasons[name]), ages_of(ages)
                )
                for name, ages in view_ages.items()
            }
        ),
        features=MappingProxyType({ref: FeatureMisses(**n) for ref, n in features.items()}),
        value_ages=ages_of([age for ages in view_ages.values() for age in ages]),
        request_ages=ages_of(request_ages),
        asked=sample.asked,
        population=sample.population,
    )


def _count_misses(
    view: ServedView, got: Served, reasons: dict[str, int], features: dict[str, dict[str, int]]
) -> None:
    """One request's misses of one view: once per reason for the view, once per feature."""
    for missed in got.missed:
        reasons[missed] += 1
    for feature, reason in zip(view.features, got.reasons, strict=True):
        if reason is not None:
            features[f"{view.name}:{feature}"][reason] += 1


def ages_of(ages: list[float]) -> Ages:
    """Nearest-rank p50, p90, p99 and the maximum of `ages` (sorted here, in place)."""
    if not ages:
        return NO_AGES
    ages.sort()
    return Ages(
        count=len(ages),
        p50=nearest_rank(ages, 0.5),
        p90=nearest_rank(ages, 0.9),
        p99=nearest_rank(ages, 0.99),
        max=ages[-1],
    )
