"""What a notification says, read from its alerts: pure functions shared by the senders.

An alert's identity is its labels (`check`, `feature_view`, `feature`, `store`, `severity` and
the user's labels; a model's alert has `model`, and `owner` when the model names one, instead of
`feature_view`); what senders show comes from its annotations, all strings:

| annotation    | meaning                                                            |
|---------------|--------------------------------------------------------------------|
| `summary`     | one line for people; built from the others when absent             |
| `description` | optional longer text                                               |
| `kind`        | the check kind (`freshness`, `null_rate`, ...)                     |
| `value`       | the measured value as people read it (`1.23%`, `2h 01m`); older alerts: a plain number |
| `value_raw`   | the measured value as a number's text (`0.0123`, `7260.0`); absent without a value |
| `unit`        | `seconds`, `ratio` or `count`: how `value` reads (alerts/format.py) |
| `threshold`   | the threshold as people read it (`format_threshold`)               |
| `threshold_raw` | the threshold as JSON text, as results give it (`{"max":3600.0,"warn":1800.0,"unit":"seconds"}`) |
| `sample_size` | how many entities or rows the value was measured on                |

Where a payload holds JSON of its own (PagerDuty's `custom_details`, each alert of the webhook
payload), `value_raw` is the number itself and `threshold_raw` the object (`raw_value`,
`raw_threshold`); Alertmanager's annotations are strings, so it gets their text.

It also builds the Alertmanager-compatible shapes: the webhook payload version 4 (webhook and
file receivers) and the alert of `POST /api/v2/alerts`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from alerts.format import format_time, format_value
from alerts.model import AlertEvent, AlertState, Notification, about

ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt of an alert still firing
UNITS = ("seconds", "ratio", "count")
SEVERITY_ORDER = ("P1", "P2", "P3", "P4")
JSONObject = dict[str, Any]  # a JSON document: heterogeneous by nature


def deliverable(alerts: Iterable[AlertEvent], send_resolved: bool = True) -> list[AlertEvent]:
    """The alerts a receiver is told about: firing ones, and resolved ones if it wants them.
    Pending alerts are never delivered (nor does Alertmanager deliver pending alerts)."""
    wanted = {AlertState.FIRING} | ({AlertState.RESOLVED} if send_resolved else set())
    return [alert for alert in alerts if alert.state in wanted]


def status_of(alerts: Iterable[AlertEvent]) -> str:
    """`firing` if any alert fires, else `resolved` (Alertmanager's group status)."""
    return "firing" if any(a.state is AlertState.FIRING for a in alerts) else "resolved"


def alert_status(alert: AlertEvent) -> str:
    return "resolved" if alert.state is AlertState.RESOLVED else "firing"


def alertname(alert: AlertEvent) -> str:
    """`alertname`, which Alertmanager receivers group and title by: the label when the user
    set one, else the check's name."""
    return alert.labels.get("alertname") or alert.labels.get("check") or "featmon"


def labels_with_alertname(alert: AlertEvent) -> dict[str, str]:
    return {"alertname": alertname(alert), **alert.labels}


def ends_at(alert: AlertEvent, notification: Notification) -> datetime:
    """When a resolved alert ended: its own end, else the notification's time."""
    return alert.ends_at or notification.created_at


def worst_severity(alerts: Iterable[AlertEvent]) -> str:
    """The most urgent severity (P1 before P4); unknown spellings after the known ones."""
    ranked = sorted(
        (a.severity for a in alerts),
        key=lambda s: (SEVERITY_ORDER.index(s) if s in SEVERITY_ORDER else len(SEVERITY_ORDER), s),
    )
    return ranked[0] if ranked else "-"


def common(mappings: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """The pairs every mapping holds with the same value (Alertmanager's commonLabels)."""
    if not mappings:
        return {}
    first, *rest = mappings
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in rest)}


def measured(alert: AlertEvent) -> str | None:
    """The measured value as people read it: `2h 03m`, `1.23%`, `1,024`; verbatim when the
    annotations give no known unit or the value is not a plain number."""
    value = alert.annotations.get("value")
    if value is None:
        return None
    unit = alert.annotations.get("unit", "")
    if unit not in UNITS:
        return value
    try:
        number = float(value)
    except ValueError:
        return value
    return format_value(number, unit)


def raw_value(alert: AlertEvent) -> float | None:
    """The measured value as a number: `value_raw`, else a plain-number `value` (alerts
    recorded before `value_raw` existed); None without one, or when not finite (JSON has no
    infinity)."""
    for key in ("value_raw", "value"):
        text = alert.annotations.get(key)
        if text is None:
            continue
        try:
            number = float(text)
        except ValueError:
            continue
        return number if math.isfinite(number) else None
    return None


def raw_threshold(alert: AlertEvent) -> JSONObject | None:
    """The threshold as results give it (`{"max": 3600.0, "warn": 1800.0, "unit": "seconds"}`),
    or None when the alert carries none that reads."""
    text = alert.annotations.get("threshold_raw")
    if text is None:
        return None
    try:
        threshold = json.loads(text)
    except ValueError:
        return None
    return threshold if isinstance(threshold, dict) else None


def subject(alert: AlertEvent) -> str:
    """`freshness on user_stats (redis_prod)`, `null_rate on user_stats.revenue (warehouse)`;
    a model's `fraud.coverage on model fraud (lake)`, `fraud.null_rate.users.spend on model
    fraud, users:spend (lake)` (its feature is `view:feature`)."""
    check = alert.labels.get("check") or alert.annotations.get("kind") or alertname(alert)
    where = about(alert.labels)
    if feature := alert.labels.get("feature"):
        joint = "." if alert.labels.get("feature_view") else ", "
        where = f"{where}{joint}{feature}" if where else feature
    text = f"{check} on {where}" if where else check
    if store := alert.labels.get("store"):
        text += f" ({store})"
    return text


def summary(alert: AlertEvent) -> str:
    """One line: the `summary` annotation, else what failed and by how much."""
    if given := alert.annotations.get("summary"):
        return given
    text = subject(alert)
    if alert.state is AlertState.RESOLVED:
        return f"{text}: resolved"
    value, threshold = measured(alert), alert.annotations.get("threshold")
    if value is not None and threshold:
        return f"{text}: {value}, threshold {threshold}"
    if value is not None:
        return f"{text}: {value}"
    return f"{text}: {alert.severity} failing"


def report_url(alert: AlertEvent, notification: Notification) -> str | None:
    """Where to read more: the alert's run report, else featmon's own URL."""
    return alert.report_url or alert.annotations.get("report_url") or notification.external_url


def truncate(text: str, limit: int, marker: str = "…") -> str:
    """`text` cut to at most `limit` characters, ending in `marker` when cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(marker))] + marker


# --- Alertmanager shapes --------------------------------------------------------------------


def webhook_alert(alert: AlertEvent, notification: Notification) -> JSONObject:
    """One alert of Alertmanager's webhook payload (version 4)."""
    resolved = alert.state is AlertState.RESOLVED
    return {
        "status": alert_status(alert),
        "labels": labels_with_alertname(alert),
        "annotations": dict(alert.annotations),
        "startsAt": format_time(alert.starts_at),
        "endsAt": format_time(ends_at(alert, notification)) if resolved else ZERO_TIME,
        "generatorURL": report_url(alert, notification) or "",
        "fingerprint": alert.fingerprint,
        "value_raw": raw_value(alert),  # beside Alertmanager's fields: the numbers themselves
        "threshold_raw": raw_threshold(alert),
    }


def webhook_message(
    notification: Notification, alerts: list[AlertEvent], max_alerts: int = 0
) -> JSONObject:
    """Alertmanager's webhook payload version 4, so that receivers written for Alertmanager
    take featmon's notifications unchanged. `max_alerts` (0: no limit) keeps the first alerts
    and counts the rest in `truncatedAlerts`, as Alertmanager's `max_alerts` does."""
    kept = alerts[:max_alerts] if max_alerts else alerts
    labels = [labels_with_alertname(a) for a in alerts]
    return {
        "version": "4",
        "groupKey": notification.group_key,
        "truncatedAlerts": len(alerts) - len(kept),
        "status": status_of(alerts),
        "receiver": notification.receiver,
        "groupLabels": dict(notification.group_labels),
        "commonLabels": common(labels),
        "commonAnnotations": common([a.annotations for a in alerts]),
        "externalURL": notification.external_url or "",
        "alerts": [webhook_alert(a, notification) for a in kept],
    }


_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def label_name(name: str) -> str:
    """A name Alertmanager 0.25 accepts (`[a-zA-Z_][a-zA-Z0-9_]*`): other characters become
    `_`, and a leading digit gets a `_` before it."""
    if _LABEL_NAME.fullmatch(name):
        return name
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return cleaned if _LABEL_NAME.fullmatch(cleaned) else f"_{cleaned}"


def label_set(pairs: Mapping[str, str]) -> dict[str, str]:
    """Valid names, and no empty values (an empty label is no label in Prometheus)."""
    return {label_name(k): v for k, v in sorted(pairs.items()) if v != ""}


def postable_alert(
    alert: AlertEvent, notification: Notification, firing_ends_at: datetime
) -> JSONObject:
    """One alert of `POST /api/v2/alerts`: a firing alert ends at `firing_ends_at` unless it
    is pushed again; a resolved one at the notification's time (now, for Alertmanager)."""
    resolved = alert.state is AlertState.RESOLVED
    end = notification.created_at if resolved else firing_ends_at
    out: JSONObject = {
        "labels": label_set(labels_with_alertname(alert)),
        "annotations": label_set(alert.annotations),
        "startsAt": format_time(alert.starts_at),
        "endsAt": format_time(max(end, alert.starts_at)),  # Alertmanager refuses an end first
    }
    if url := report_url(alert, notification):
        out["generatorURL"] = url
    return out
