"""One module per check kind, each declaring its `Kind` as `KIND`; `KINDS` lists them all.

A new kind is its module, one line here and its tests. Everything else (planning, the offline
metrics, evaluation, probing, the exported metrics) finds it through `kind_of`.
"""

from __future__ import annotations

from typing import Any

from checks.errors import UnknownKind
from checks.kinds import (
    anomaly,
    coverage,
    distribution_drift,
    duplicates,
    freshness,
    late_arrivals,
    null_rate,
    row_count,
    schema_drift,
    skew,
    soda,
)
from checks.kinds import range as range_kind  # not to shadow the builtin
from checks.kinds.base import Kind

KINDS: tuple[Kind[Any], ...] = (
    freshness.KIND,
    coverage.KIND,
    null_rate.KIND,
    schema_drift.KIND,
    late_arrivals.KIND,
    row_count.KIND,
    duplicates.KIND,
    range_kind.KIND,
    skew.KIND,
    distribution_drift.KIND,
    anomaly.KIND,
    soda.KIND,
)
_BY_NAME = {kind.name: kind for kind in KINDS}


def kind_of(name: str) -> Kind[Any]:
    """The kind called `name`; raises `UnknownKind` for any other name."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownKind(name, tuple(_BY_NAME)) from None
