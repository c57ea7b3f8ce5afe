"""The deployment files are real: the rules pass promtool, the Kubernetes ConfigMap holds a
configuration featmon accepts, the dashboard and rules query metrics featmon exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from monitor.loader import load

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
EXPORTED = {
    "featmon_feature_freshness_seconds",
    "featmon_feature_coverage_ratio",
    "featmon_feature_null_ratio",
    "featmon_schema_drift_columns",
    "featmon_check_status",
    "featmon_last_run_timestamp_seconds",
    "featmon_probe_duration_seconds_bucket",
    "featmon_probe_errors_total",
    "featmon_runs_skipped_total",
    "featmon_config_last_reload_successful",
}


def test_the_alerting_rules_pass_promtool() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: apt-get install prometheus (./dev test installs it)"
    done = subprocess.run(
        [promtool, "check", "rules", str(DEPLOY / "prometheus" / "featmon-rules.yaml")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 8 rules found" in done.stdout


def metric_names(text: str) -> set[str]:
    return set(re.findall(r"\b(featmon_[a-z_]+)\b", text)) | (
        {"up"} if re.search(r"\bup\{", text) else set()
    )


def test_rules_and_dashboard_only_query_metrics_featmon_exports() -> None:
    rules = (DEPLOY / "prometheus" / "featmon-rules.yaml").read_text(encoding="utf-8")
    dashboard = json.loads((DEPLOY / "grafana" / "featmon-dashboard.json").read_text("utf-8"))
    exprs = " ".join(target["expr"] for panel in dashboard["panels"] for target in panel["targets"])
    used = metric_names(rules) | metric_names(exprs)
    assert used - {"up"} <= EXPORTED, used - EXPORTED


def test_the_kubernetes_config_map_holds_a_valid_configuration(tmp_path: Path) -> None:
    """The example is loaded by featmon's own loader (secrets from the environment)."""
    documents = list(
        yaml.safe_load_all((DEPLOY / "kubernetes" / "featmon-sidecar.yaml").read_text("utf-8"))
    )
    config_map = next(d for d in documents if d["kind"] == "ConfigMap")
    (tmp_path / "checks").mkdir()
    (tmp_path / "config.yaml").write_text(config_map["data"]["config.yaml"], encoding="utf-8")
    (tmp_path / "checks" / "user_stats.yaml").write_text(
        config_map["data"]["user_stats.yaml"], encoding="utf-8"
    )
    env = dict.fromkeys(("REDIS_PASSWORD", "WAREHOUSE_PASSWORD", "PAGERDUTY_ROUTING_KEY"), "x") | {
        "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/X"
    }
    loaded = load(tmp_path / "config.yaml", env)
    assert [v.view.name for v in loaded.views] == ["user_stats"]
    assert loaded.config.http.listen == "0.0.0.0:9108"
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    featmon = next(
        c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "featmon"
    )
    assert featmon["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert featmon["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_image_runs_as_a_non_root_user_with_a_health_check() -> None:
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^USER 10001$", dockerfile, re.MULTILINE)
    assert "HEALTHCHECK" in dockerfile
    assert "/healthz" in dockerfile


@pytest.mark.parametrize("name", ["featmon-dashboard.json"])
def test_the_dashboard_is_valid_json_with_unique_panel_ids(name: str) -> None:
    dashboard = json.loads((DEPLOY / "grafana" / name).read_text(encoding="utf-8"))
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert dashboard["uid"] == "featmon-overview"
