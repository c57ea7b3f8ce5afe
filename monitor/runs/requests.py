"""A model's requests without a serving log: a sample of recent requests (one column per join
key, from a query on an offline store or a CSV file), probed in each view's online store now,
one read per view; a request is covered when every feature of the model is."""

from __future__ import annotations

from datetime import datetime

from checks.observation import ModelObservation, ProbeFailure
from monitor.loader import LoadedModel
from monitor.runs.probe import Stores


def observe(
    model: LoadedModel, stores: Stores, scheduled_at: datetime
) -> ModelObservation | ProbeFailure:
    """The sampled requests' observation, or the failure that kept them from being seen."""
    del stores, scheduled_at
    return ProbeFailure("", model.key, "request samples are not measured yet")
