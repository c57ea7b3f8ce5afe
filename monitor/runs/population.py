"""Which entities a probe asks the online store for (DESIGN.md section 3, coverage).

- `offline`: entity ids seen in the view's offline source within `lookback`, sampled by the
  engine; deliberately wider than the TTL, so entities whose data stopped arriving still count.
- `query`: recent serving requests: the user's SQL run on the view's offline store, or a CSV
  file of request ids (sampled here with a reservoir, so memory is bounded by the sample).
- `online`: random keys of the online store; the fallback when a view has no offline source.
"""

from __future__ import annotations

import csv
import itertools
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from checks.model import FeatureView
from monitor.abc import EntityKey, OfflineStore, OnlineStore
from monitor.errors import SourceNotFound, StoreError

INTEGER_TYPES = frozenset({"int", "int32", "int64", "timestamp"})


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
        elif kind == "query" and source.ids_file is not None:
            keys = read_ids(Path(source.ids_file), view, source.sample, online.name, rng)
        elif kind == "query" and source.query is not None and offline is not None:
            keys = offline.query_entities(view, source.query, source.sample)
        else:
            keys = online.sample_keys(view, source.sample)
    except StoreError as exc:
        raise type(exc)(exc.store, f"sampling the {kind} population failed: {exc.detail}") from exc
    return Population(kind, keys)


def read_ids(
    path: Path, view: FeatureView, size: int, store: str, rng: random.Random | None = None
) -> list[EntityKey]:
    """At most `size` requests drawn uniformly from a CSV of request ids (reservoir sampling:
    one pass, memory bounded by `size`). An entity requested often is drawn often: coverage is a
    fraction of requests. The header names the join keys; a view with one join key may have a
    file of bare ids. Ids of integer join keys are read as integers."""
    rng = rng or random.Random()  # noqa: S311  (sampling, not security)
    keys = view.join_keys
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
            return _reservoir(rows, pending, positions, view, size, rng)
    except OSError as exc:
        raise SourceNotFound(store, f"cannot read the ids file {path}: {exc.strerror}") from exc


def _reservoir(
    rows: Iterable[list[str]],
    pending: list[list[str]],
    positions: list[int],
    view: FeatureView,
    size: int,
    rng: random.Random,
) -> list[EntityKey]:
    kinds = [view.entity_types.get(key, "") in INTEGER_TYPES for key in view.join_keys]
    chosen: list[EntityKey] = []
    count = 0
    for row in itertools.chain(pending, rows):
        if not row or any(p >= len(row) or not row[p].strip() for p in positions):
            continue
        key = tuple(
            _typed(row[p].strip(), integer) for p, integer in zip(positions, kinds, strict=True)
        )
        count += 1
        if len(chosen) < size:
            chosen.append(key)
        else:
            slot = rng.randrange(count)
            if slot < size:
                chosen[slot] = key
    return chosen


def _typed(text: str, integer: bool) -> int | str:
    if integer:
        try:
            return int(text)
        except ValueError:
            return text
    return text
