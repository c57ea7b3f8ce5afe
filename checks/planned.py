"""A planned check: one check bound to its view, its target store and (for per-feature kinds)
one feature. Built by `checks.plan`, evaluated by the kind modules of `checks.kinds`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import timedelta
from types import MappingProxyType
from typing import TypeGuard

from checks.model import AnyCheck, FeatureView, Target
from checks.observation import OfflineMetric, OfflineObservation, Sampled, SampledMetric
from checks.source import Path


@dataclass(frozen=True)
class PlannedCheck:
    """One check bound to its view, its target store and (for null rates) one feature."""

    id: str
    view: FeatureView
    check: AnyCheck
    target: Target
    store: str
    feature: str | None
    path: Path  # where the check stands in its file, for error messages

    @property
    def kind(self) -> str:
        return self.check.kind

    @property
    def labels(self) -> dict[str, str]:
        return {**self.view.labels, **self.check.labels}


def window_of(planned: PlannedCheck) -> timedelta:
    """The check's window of event times: its own `window`, or the view's TTL."""
    window: timedelta | None = getattr(planned.check, "window", None)
    return planned.view.ttl if window is None else window


def sample_of(planned: PlannedCheck) -> float | None:
    """The percentage of the offline table's blocks a rate check reads (None: every row)."""
    offline = planned.view.offline
    return None if offline is None or planned.target != "offline" else offline.sample


def on_sample(planned: PlannedCheck, metrics: Iterable[SampledMetric]) -> frozenset[OfflineMetric]:
    """A rate check's metrics, each `Sampled` when its view's offline source says `sample`."""
    percent = sample_of(planned)
    if percent is None:
        return frozenset(metrics)
    return frozenset(Sampled(metric, percent) for metric in metrics)


def sampled_values(planned: PlannedCheck, observation: OfflineObservation) -> OfflineObservation:
    """What a rate check reads of `observation`, keyed by its plain metrics: the values (and
    reasons) measured on the sample when the view samples, else the observation as it is."""
    percent = sample_of(planned)
    if percent is None:
        return observation
    return replace(
        observation,
        values=MappingProxyType(
            {m.metric: v for m, v in observation.values.items() if _on(m, percent)}
        ),
        unavailable=MappingProxyType(
            {m.metric: r for m, r in observation.unavailable.items() if _on(m, percent)}
        ),
    )


def _on(metric: OfflineMetric, percent: float) -> TypeGuard[Sampled]:
    return isinstance(metric, Sampled) and metric.percent == percent
