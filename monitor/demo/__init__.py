"""`featmon demo`: a local feature store with known faults, checked by the example configuration."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import MappingProxyType

CONFIG_NAME = "config.example.yaml"

PLANTED: Mapping[str, str] = MappingProxyType(
    {
        "user_stats.freshness@online": "fail",  # 30 users stopped refreshing 3 days ago
        "user_stats.coverage@online": "fail",  # 40 missing, 30 stale, 20 null of 1000
        "user_stats.null_rate.rolling_7d_revenue@online": "fail",  # 20 of 960 null
        "user_stats.null_rate.purchase_count_30d@online": "pass",
        "user_stats.null_rate.last_active_days_ago@online": "pass",
        "user_stats.schema_drift@online": "warn",  # a renamed feature still stored
        "user_stats.freshness@offline": "pass",
        "user_stats.schema_drift@offline": "pass",
        "merchant_stats.freshness@online": "pass",
        "merchant_stats.coverage@online": "pass",
        "merchant_stats.null_rate.avg_ticket_usd@online": "pass",
        "merchant_stats.null_rate.category@offline": "pass",
        "merchant_stats.schema_drift@offline": "pass",
        "transaction_features.freshness@offline": "fail",  # the job stopped 26 hours ago
        "transaction_features.null_rate.merchant_category@offline": "warn",  # 3% null
        "transaction_features.schema_drift@offline": "fail",  # retyped, dropped, added
        # Each view covers > 95% of the model's requests; the model 1850 of 2000 (92.5%).
        "checkout_model.coverage": "fail",
        "checkout_model.freshness": "pass",  # p99 of every value: 50 minutes < 1h
        "checkout_model.freshness.requests": "warn",  # p99 of each request's oldest: 50m > 45m
        "checkout_model.null_rate.user_stats.rolling_7d_revenue": "warn",  # 70 of 2000 unserved
    }
)
"""The status each check of the demo has when featmon finds every planted fault."""


def unexpected(statuses: Mapping[str, str]) -> dict[str, tuple[str | None, str | None]]:
    """The checks whose status differs from the planted one: check -> (planted, found)."""
    names = sorted(set(PLANTED) | set(statuses))
    return {
        name: (PLANTED.get(name), statuses.get(name))
        for name in names
        if PLANTED.get(name) != statuses.get(name)
    }


@dataclass(frozen=True)
class DemoStore:
    directory: Path
    summary: str


def build(directory: Path, now: datetime) -> DemoStore:
    """Build (or rebuild) the demo store under `directory` for the scheduled time `now`."""
    from monitor.demo import store  # noqa: PLC0415  (loads the SQL writers only for the demo)

    return DemoStore(directory, store.build(directory, now))


def example_config() -> Path:
    """The example configuration: shipped inside the package by the wheel, or at the top of a
    source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / CONFIG_NAME, here.parents[1] / CONFIG_NAME):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{CONFIG_NAME} is missing from this installation of featmon")
