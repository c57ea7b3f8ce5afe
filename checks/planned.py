"""A planned check: one check bound to its view, its target store and (for per-feature kinds)
one feature. Built by `checks.plan`, evaluated by the kind modules of `checks.kinds`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from checks.model import AnyCheck, FeatureView, Target
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
