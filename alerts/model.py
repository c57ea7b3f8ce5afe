"""The values of the alerting room: an alert's identity and state, and the notification that a
receiver is asked to deliver. Immutable; what crosses from the lifecycle engine to the senders.

Identity of an alert = its labels (check, feature_view, feature, store, severity and the user's
labels; a model's alert has `model`, and its `owner`, instead of feature_view); its fingerprint is a stable hash of the sorted labels. Values and links are
annotations, never identity.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from checks.result import subject_key
from checks.serde import FrozenMap, IsoTime


class AlertState(enum.Enum):
    PENDING = "pending"  # failing, but not for `for_runs` runs yet
    FIRING = "firing"
    RESOLVED = "resolved"


def fingerprint(labels: Mapping[str, str]) -> str:
    """A stable 16-hex-digit hash of the sorted labels (the same labels, the same alert)."""
    canonical = json.dumps(sorted(labels.items()), separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def subject_of(labels: Mapping[str, str]) -> str:
    """What an alert is about, as `CheckResult.subject` names it: its `feature_view` label, or
    `model:<name>` for a model's alert (which has a `model` label and no feature view)."""
    if "feature_view" in labels:
        return labels["feature_view"]
    return subject_key(None, labels.get("model", ""))


def about(labels: Mapping[str, str]) -> str:
    """What an alert is about, for people: its feature view (`user_stats`), or its model
    (`model fraud`) when it has no feature view (a view's check may carry a user's `model`
    label); empty when it names neither."""
    if view := labels.get("feature_view"):
        return view
    if model := labels.get("model"):
        return f"model {model}"
    return ""


def subject_labels(feature_view: str | None, model: str | None) -> dict[str, str]:
    """The label naming what an alert is about: `feature_view`, or `model` for a model's."""
    return {"model": model} if model is not None else {"feature_view": feature_view or ""}


@dataclass(frozen=True)
class AlertEvent:
    """One alert as a notification carries it."""

    labels: FrozenMap[str, str]
    annotations: FrozenMap[str, str]  # summary, value, threshold, report_url, ...
    state: AlertState
    starts_at: IsoTime
    ends_at: IsoTime | None  # set when resolved
    severity: str  # P1..P4
    report_url: str | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)


@dataclass(frozen=True)
class Notification:
    """What one receiver is asked to deliver: a group of alerts that share the group labels."""

    receiver: str
    group_key: str  # stable: the route and the values of its group_by labels
    group_labels: FrozenMap[str, str]
    alerts: tuple[AlertEvent, ...]
    created_at: IsoTime
    external_url: str | None = None  # featmon's own URL (reports index)
    common_labels: FrozenMap[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def status(self) -> str:
        """`firing` if any alert fires, else `resolved` (Alertmanager's convention)."""
        firing = any(a.state is AlertState.FIRING for a in self.alerts)
        return "firing" if firing else "resolved"
