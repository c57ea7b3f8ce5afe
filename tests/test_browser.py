"""Debian's chromium, headless, opens the reports index and a run's report from the sidecar:
they render (the DOM holds the runs, the links and the charts) with no console error."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.demo import PLANTED
from monitor.state import StateStore
from tests.sidecar import Demo, serve

CHROMIUM = "chromium"
pytestmark = pytest.mark.slow
# Chromium writes page console messages to its log as `INFO:CONSOLE:1] "message", source: url`
# (older builds: `CONSOLE(1)]`).
CONSOLE = re.compile(r":CONSOLE[:(]\d+\)?\]|Refused to|Uncaught")


def chromium() -> str:
    path = shutil.which(CHROMIUM)
    if path is None:
        pytest.fail("chromium is not installed: apt-get install -y chromium (Debian package)")
    return path


def render(url: str, profile: Path) -> tuple[str, str]:
    """The DOM after load, and chromium's log, for `url`."""
    done = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout, done.stderr


def console_errors(log: str) -> list[str]:
    return [line for line in log.splitlines() if CONSOLE.search(line)]


@pytest.fixture(scope="module")
def base(demo: Demo) -> Iterator[str]:
    with StateStore(demo.state_url) as state, serve(state) as url:
        yield url


def test_the_index_renders_its_runs_and_views_without_console_errors(
    base: str, tmp_path: Path
) -> None:
    """The index lists the three demo runs, linked, and the three views, with a clean console."""
    dom, log = render(f"{base}/reports/", tmp_path / "profile")
    assert console_errors(log) == []
    assert len(re.findall(r'<tr class="s-\w+" data-run="', dom)) == 3
    assert '<a href="20261126T060000Z-demo"><code>20261126T060000Z-demo</code></a>' in dom
    assert re.findall(r'data-view="([^"]+)"', dom) == [
        "merchant_stats",
        "transaction_features",
        "user_stats",
    ]


def test_a_run_report_renders_its_charts_without_console_errors(base: str, tmp_path: Path) -> None:
    """The newest run's page shows its checks, a history chart each and the link to the index."""
    dom, log = render(f"{base}/reports/20261126T060000Z-demo", tmp_path / "profile")
    assert console_errors(log) == []
    assert dom.count('<svg class="spark"') == len(PLANTED)
    assert dom.count('class="spark-dot ') == len(PLANTED) * 3
    assert 'href="./" rel="index">All reports</a>' in dom
    assert "user_stats.coverage@online" in dom.replace("<wbr>", "")


def test_console_errors_are_caught_from_the_log(tmp_path: Path) -> None:
    """The check above can fail: a page whose script the CSP refuses logs a console error."""
    page = tmp_path / "bad.html"
    page.write_text(
        '<!doctype html><meta http-equiv="Content-Security-Policy" content="default-src \'none\'">'
        "<p>x</p><script>console.error('boom')</script>",
        encoding="utf-8",
    )
    _, log = render(page.as_uri(), tmp_path / "profile")
    assert console_errors(log), log
