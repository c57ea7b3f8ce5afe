"""A model's requests without a serving log: a sample of recent requests (one column per join
key, from a query on an offline store or a CSV file), probed in each view's online store now,
one read per view; a request is covered when every feature of the model is.

The sample is drawn as a view's `query` population is (`population.recent_requests`), over
every join key of the model. Each view is then read once, for the distinct entities the
requests ask it for, and `checks.requests` judges every request from those readings. Any store
that cannot be read makes the whole observation a `ProbeFailure` naming it: a model whose
views were not all seen is not measured, never partly passed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime

from checks import requests as judged
from checks.model import FeatureView
from checks.observation import EntityReading, ModelObservation, ProbeFailure
from checks.requests import RequestKey, Sample, view_keys
from checks.served import RequestSample, ServedView
from monitor.abc import EntityKey
from monitor.errors import StoreError
from monitor.loader import LoadedModel
from monitor.runs import population
from monitor.runs.probe import Stores, guard

IDS_FILE = "ids_file"
"""What a request sample read from a file is named by in errors and probe metrics (no store
holds it)."""


def observe(
    model: LoadedModel, stores: Stores, scheduled_at: datetime, rng: random.Random | None = None
) -> ModelObservation | ProbeFailure:
    """The sampled requests' observation, or the failure that kept them from being seen.
    `rng` draws from an ids file (default: a fresh one); a query is sampled by its engine."""
    source = model.served.model.requests
    if source is None:
        return ProbeFailure("", model.key, "the model has no request sample")
    sample = Sample(
        store=source.store or "",
        population="ids_file" if source.ids_file is not None else "query",
        asked=source.sample,
    )
    drawn = guard(
        source.store or IDS_FILE, model.key, lambda: _draw(model, source, stores, rng), stores
    )
    if isinstance(drawn, ProbeFailure):
        return drawn
    keys = view_keys(model.served, drawn)
    entities: dict[str, Sequence[EntityReading]] = {}
    for served, view in zip(model.served.views, model.views, strict=True):
        read = _read(model, _narrowed(view, served), keys[view.name], sample, stores)
        if isinstance(read, ProbeFailure):
            return read
        entities[view.name] = read
    return judged.observe(model.served, drawn, entities, scheduled_at, sample)


def _draw(
    model: LoadedModel, source: RequestSample, stores: Stores, rng: random.Random | None
) -> list[RequestKey]:
    """The requests drawn from the sample's file or query; an error names the model."""
    offline = stores.offline.get(source.store) if source.store is not None else None
    keys = population.RequestKeys.of(model.views)
    try:
        return population.recent_requests(
            keys, source.query, source.ids_file, source.sample, offline, IDS_FILE, rng
        )
    except StoreError as exc:
        detail = f"sampling the requests of model {model.name} failed: {exc.detail}"
        raise type(exc)(exc.store, detail) from exc


def _read(
    model: LoadedModel,
    view: FeatureView,
    keys: list[EntityKey],
    sample: Sample,
    stores: Stores,
) -> tuple[EntityReading, ...] | ProbeFailure:
    """One read of the view's distinct entities in its online store; a failure names the view
    and the store."""
    if view.online is None:
        return ProbeFailure("", model.key, f"view {view.name} has no online source to read")
    store = stores.online[view.online.store]

    def read() -> tuple[EntityReading, ...]:
        try:
            return store.read(view, keys, sample.population, undeclared=False).entities
        except StoreError as exc:
            detail = f"reading view {view.name} for model {model.name} failed: {exc.detail}"
            raise type(exc)(exc.store, detail) from exc

    return guard(store.name, model.key, read, stores)


def _narrowed(view: FeatureView, served: ServedView) -> FeatureView:
    """The view with only the features the model is served: all its store need read."""
    features = {name: view.features[name] for name in served.features}
    return view.model_copy(update={"features": features})
