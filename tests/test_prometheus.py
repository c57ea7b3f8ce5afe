"""A real Prometheus (Debian package `prometheus`) scrapes the sidecar every second; the values
it stored, read back through its HTTP query API, are the demo's."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from monitor.state import StateStore
from tests.sidecar import NOW, run_demo, serve

PROMETHEUS = "/usr/bin/prometheus"
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Prometheus scraping a sidecar over the demo's state; yields Prometheus' base URL."""
    if shutil.which(PROMETHEUS) is None:
        pytest.fail("Prometheus is not installed: apt-get install -y prometheus (Debian package)")
    root = tmp_path_factory.mktemp("prometheus")
    demo = run_demo(root / "demo")
    with StateStore(demo.state_url) as state, serve(state) as sidecar:
        target = sidecar.removeprefix("http://")
        config = root / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: featmon\n    static_configs: [{{targets: ['{target}']}}]\n",
            encoding="utf-8",
        )
        port = free_port()
        log = (root / "prometheus.log").open("wb")
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={root / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            process.kill()
            process.wait(timeout=30)
            log.close()


def query(base: str, promql: str, timeout: float = 60) -> list[dict[str, object]]:
    """The instant vector of `promql`, waiting (bounded) until Prometheus has scraped it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = httpx.get(f"{base}/api/v1/query", params={"query": promql}, timeout=5)
            found: list[dict[str, object]] = response.json()["data"]["result"]
            if found:
                return found
        except (httpx.TransportError, ValueError, KeyError):
            pass  # Prometheus is still starting
        if time.monotonic() > deadline:
            raise AssertionError(f"Prometheus returned nothing for {promql} in {timeout:.0f} s")
        time.sleep(0.5)


def scalar(base: str, promql: str) -> float:
    found = query(base, promql)
    assert len(found) == 1, found
    sample = found[0]["value"]
    assert isinstance(sample, list)
    return float(sample[1])


def test_prometheus_scrapes_the_sidecar_successfully(prometheus: str) -> None:
    """The target is up: the exposition parses for Prometheus itself."""
    assert scalar(prometheus, 'up{job="featmon"}') == 1


def test_prometheus_stores_the_demos_coverage_and_null_ratio(prometheus: str) -> None:
    """Coverage 0.91 and the revenue null ratio 20/960, as Prometheus read them."""
    coverage = 'featmon_feature_coverage_ratio{feature_view="user_stats",store="demo_online"}'
    assert scalar(prometheus, coverage) == pytest.approx(0.91)
    nulls = 'featmon_feature_null_ratio{feature="rolling_7d_revenue"}'
    assert scalar(prometheus, nulls) == pytest.approx(20 / 960)


def test_prometheus_can_alert_on_failing_checks(prometheus: str) -> None:
    """`featmon_check_status >= 2` selects the six failing checks of the demo."""
    found = query(prometheus, "featmon_check_status >= 2")
    checks = sorted(str(r["metric"]["check"]) for r in found)  # type: ignore[index]  # Prometheus' JSON answer, untyped
    assert checks == [
        "checkout_model.coverage",
        "transaction_features.freshness@offline",
        "transaction_features.schema_drift@offline",
        "user_stats.coverage@online",
        "user_stats.freshness@online",
        "user_stats.null_rate.rolling_7d_revenue@online",
    ]


def test_prometheus_reads_the_last_run_time_and_freshness(prometheus: str) -> None:
    """The last run's scheduled time and the three-day p99 age survive the round trip."""
    last_run = 'featmon_last_run_timestamp_seconds{feature_view="user_stats"}'
    assert scalar(prometheus, last_run) == NOW.timestamp()
    p99 = 'featmon_feature_freshness_seconds{feature_view="user_stats",store="demo_online",quantile="0.99"}'
    assert scalar(prometheus, p99) == 3 * 86400


def test_the_tmp_storage_is_used(prometheus: str) -> None:
    """Prometheus reports its runtime with the temporary storage path, not the system one."""
    info = httpx.get(f"{prometheus}/api/v1/status/flags", timeout=5).json()["data"]
    assert info["storage.tsdb.path"] != "/var/lib/prometheus/metrics2/"
    assert info["storage.tsdb.path"].endswith("/data")
