"""The model `fraud` of tests/test_models.py with merchants materialized hourly and a
freshness_risk check besides its others, judged from that module's observation."""

from __future__ import annotations

from pathlib import Path

from checks.result import CheckResult
from checks.served_judge import judge
from monitor.loader import load
from tests.test_loader import CONFIG, write
from tests.test_models import MODEL, VIEWS, observation

NULL_RATE = "      - {kind: null_rate, max: 0.01}\n"


def with_freshness_risk(tmp_path: Path) -> list[CheckResult]:
    """Its results in check order; `fraud.freshness_risk.merchants` predicts 40 minutes (a
    median age of 10 minutes plus half the hour) against the hour merchants may be old."""
    views = VIEWS.replace("    ttl: 2h\n", "    ttl: 2h\n    materialized_every: 1h\n")
    model = MODEL.replace(NULL_RATE, NULL_RATE + "      - {kind: freshness_risk}\n")
    files = {"config.yaml": CONFIG, "checks/views.yaml": views, "checks/models.yaml": model}
    (loaded,) = load(write(tmp_path, files), {}).models
    return [judge(planned, observation()) for planned in loaded.planned]
