"""Which entities a probe asks the online store for (DESIGN.md section 3, coverage).

- `offline`: entity ids seen in the view's offline source within `lookback`, sampled by the
  engine; deliberately wider than the TTL, so entities whose data stopped arriving still count.
- `query`: recent serving requests: the user's SQL run on the view's offline store, or a CSV
  file of request ids (sampled here with a reservoir, so memory is bounded by the sample).
- `online`: random keys of the online store; the fallback when a view has no offline source.

A model's request sample (`monitor.runs.requests`) is drawn by the same `recent_requests` as a view's
`query` population, over every join key of the model rather than one view's.
"""

from __future__ import annotations

import csv
import itertools
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from checks.model import FeatureView
from monitor.abc import EntityKey, OfflineStore, OnlineStore
from monitor.errors import SourceNotFound, StoreError

INTEGER_TYPES = frozenset({"int", "int32", "int64", "timestamp"})


class Keyed(Protocol):
    """What requests are drawn for: a feature view, or a model (every join key of its views)."""

    @property
    def join_keys(self) -> tuple[str, ...]: ...

    @property
    def entity_types(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class RequestKeys:
    """The join keys of a model's requests, and the declared types of those its views type."""

    join_keys: tuple[str, ...]
    entity_types: Mapping[str, str]

    @classmethod
    def of(cls, views: Sequence[FeatureView]) -> RequestKeys:
        """Every join key of `views` in the order they name them; a key's type is the first
        view's that declares one."""
        types: dict[str, str] = {}
        for view in views:
            for key, dtype in view.entity_types.items():
                types.setdefault(key, dtype)
        keys = tuple(dict.fromkeys(key for view in views for key in view.join_keys))
        return cls(keys, types)


@dataclass(frozen=True)
class Population:
    kind: str  # "offline", "query" or "online": what the report says was sampled
    keys: list[EntityKey]


def sample(
    view: FeatureView,
    online: OnlineStore,
    offline: OfflineStore | None,
    at: datetime,
    rng: random.Random | None = None,
) -> Population:
    """The keys to read for `view` at the scheduled time `at`; raises `StoreError`."""
    source = view.online
    if source is None:
        raise ValueError(f"feature view {view.name!r} has no online source to sample")
    kind = source.population
    if kind == "offline" and offline is None:
        kind = "online"  # the documented fallback
    try:
        if kind == "offline" and offline is not None:
            keys = offline.sample_entities(view, source.sample, at - source.lookback, at)
        elif kind == "query" and (source.ids_file is not None or offline is not None):
            keys = recent_requests(
                view, source.query, source.ids_file, source.sample, offline, online.name, rng
            )
        else:
            keys = online.sample_keys(view, source.sample)
    except StoreError as exc:
        raise type(exc)(exc.store, f"sampling the {kind} population failed: {exc.detail}") from exc
    return Population(kind, keys)


def recent_requests(
    keyed: Keyed,
    query: str | None,
    ids_file: str | None,
    size: int,
    offline: OfflineStore | None,
    store: str,
    rng: random.Random | None = None,
) -> list[EntityKey]:
    """At most `size` recent requests (one value per join key of `keyed`, in its order), drawn
    at random from the `ids_file` (named `store` in its errors), else from the rows of the
    user's `query` run on `offline`; raises `StoreError`."""
    if ids_file is not None:
        return read_ids(Path(ids_file), keyed, size, store, rng)
    if query is None or offline is None:
        raise ValueError("expected an ids file, or a query and the offline store it runs on")
    return offline.query_entities(keyed.join_keys, query, size)


def read_ids(
    path: Path, keyed: Keyed, size: int, store: str, rng: random.Random | None = None
) -> list[EntityKey]:
    """At most `size` requests drawn uniformly from a CSV of request ids (reservoir sampling:
    one pass, memory bounded by `size`). An entity requested often is drawn often: coverage is a
    fraction of requests. The header names the join keys; with one join key the file may hold
    bare ids. Ids of integer join keys are read as integers."""
    rng = rng or random.Random()  # noqa: S311  (sampling, not security)
    keys = keyed.join_keys
    try:
        with path.open(newline="", encoding="utf-8") as file:
            rows = csv.reader(file)
            first = next(rows, None)
            if first is None:
                return []
            header = [cell.strip() for cell in first]
            if set(keys) <= set(header):
                positions = [header.index(key) for key in keys]
                pending: list[list[str]] = []
            elif len(keys) == 1:
                positions, pending = [0], [first]
            else:
                raise SourceNotFound(
                    store,
                    f"{path}: expected a header naming the join keys {list(keys)}, found {header}",
                )
            return _reservoir(rows, pending, positions, keyed, size, rng)
    except OSError as exc:
        raise SourceNotFound(store, f"cannot read the ids file {path}: {exc.strerror}") from exc


def _reservoir(
    rows: Iterable[list[str]],
    pending: list[list[str]],
    positions: list[int],
    keyed: Keyed,
    size: int,
    rng: random.Random,
) -> list[EntityKey]:
    """The rows drawn, kept as read and typed once drawn: a file holds many more rows than
    the sample, and most are passed over."""
    chosen: list[list[str]] = []
    count = 0
    for row in itertools.chain(pending, rows):
        if not row or any(p >= len(row) or not row[p].strip() for p in positions):
            continue
        count += 1
        if len(chosen) < size:
            chosen.append(row)
        else:
            slot = rng.randrange(count)
            if slot < size:
                chosen[slot] = row
    kinds = [keyed.entity_types.get(key, "") in INTEGER_TYPES for key in keyed.join_keys]
    typed = list(zip(positions, kinds, strict=True))
    return [tuple(_typed(row[p].strip(), integer) for p, integer in typed) for row in chosen]


def _typed(text: str, integer: bool) -> int | str:
    if integer:
        try:
            return int(text)
        except ValueError:
            return text
    return text
