"""The deployment files are real: the rules pass promtool, the Kubernetes ConfigMap holds a
configuration featmon accepts, the dashboard and rules query metrics featmon exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from monitor.loader import load
from monitor.metrics import Metrics, fixed_state, new_registry
from monitor.state import StateStore
from tests.sidecar import run_demo, serve

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"


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


def exported(tmp_path: Path) -> set[str]:
    """Every series name featmon's /metrics carries after a demo run and some daemon activity,
    read from the samples themselves (histograms as their _bucket, _sum and _count)."""
    demo = run_demo(tmp_path)
    with StateStore(demo.state_url) as state:
        registry = new_registry()
        metrics = Metrics(registry, fixed_state(state))
        # What the daemon's observer reports while it works: a failed probe, a skipped run.
        metrics.probe_finished("user_stats", "demo_online", 0.5, failed=True)
        metrics.run_skipped("user_stats", datetime.now(UTC))
        with serve(state, registry=registry) as url:
            text = httpx.get(f"{url}/metrics", timeout=10).text
    return set(re.findall(r"^(featmon_[a-z_]+)[{ ]", text, re.MULTILINE))


def test_rules_and_dashboard_only_query_metrics_featmon_exports(tmp_path: Path) -> None:
    rules = (DEPLOY / "prometheus" / "featmon-rules.yaml").read_text(encoding="utf-8")
    dashboard = json.loads((DEPLOY / "grafana" / "featmon-dashboard.json").read_text("utf-8"))
    exprs = " ".join(target["expr"] for panel in dashboard["panels"] for target in panel["targets"])
    used = metric_names(rules) | metric_names(exprs)
    missing = used - {"up"} - exported(tmp_path)
    assert not missing, f"queried but not exported: {sorted(missing)}"


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
        "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/X",
        "FEATMON_HTTP_TOKEN": "t" * 64,
        "FEATMON_LINK_KEY": "k" * 64,
    }
    loaded = load(tmp_path / "config.yaml", env)
    assert [v.view.name for v in loaded.views] == ["user_stats"]
    assert loaded.config.http.listen == "0.0.0.0:9108"
    # The name in reports.base_url is one the sidecar answers to, and its links are signed.
    base_host = urlsplit(loaded.config.reports.base_url or "").hostname
    assert base_host in loaded.config.http.allowed_hosts
    assert loaded.config.reports.link_key is not None
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
