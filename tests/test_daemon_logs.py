"""What `featmon run` says on stderr: where it serves, the configuration loaded once, no
uvicorn lines under `uvicorn.error`, no empty receiver list, and each run's fields as JSON."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from monitor.cli.main import _JsonFormatter
from tests.sidecar import serve
from tests.test_catch_up import quiet, views
from tests.test_daemon import REPO, RUN_LINE, free_port, store_dir, wait_for, write_config

__all__ = ["store_dir"]  # the module-scoped fixture, shared with test_daemon


def run_daemon(
    tmp_path: Path, store_dir: Path, log_format: str, until: Callable[[str], bool]
) -> tuple[str, int]:
    """`featmon run` on one view every 5 minutes (caught up at start) until its stderr says
    `until`, then SIGTERM; its stderr and the port it served."""
    config = write_config(tmp_path, store_dir, views(quiet(1)))
    port = free_port()
    with config.open("a", encoding="utf-8") as file:
        file.write(f"http: {{listen: '127.0.0.1:{port}'}}\n")
    log_file = tmp_path / "featmon.log"
    with log_file.open("w") as log:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "monitor.cli.main", "--log-format", log_format),
                *("run", "--config", str(config)),
            ],
            cwd=REPO,
            stderr=log,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
    try:
        wait_for(log_file, until, timeout=20)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
    return log_file.read_text(), port


@pytest.mark.slow
def test_the_text_log_says_where_it_serves_once_and_nothing_under_uvicorn_error(
    tmp_path: Path, store_dir: Path
) -> None:
    """One `serving` line with the URL and its paths; `loaded` once; no `uvicorn.error` line
    (uvicorn's start and stop are not news); no `receivers` line with nothing after it."""
    text, port = run_daemon(tmp_path, store_dir, "text", lambda t: bool(RUN_LINE.search(t)))
    serving = [line for line in text.splitlines() if "serving http://" in line]
    assert len(serving) == 1, text
    assert serving[0].endswith(f"serving http://127.0.0.1:{port}: /metrics, /reports/, /readyz")
    assert " INFO " in serving[0]
    assert text.count("monitor.loader: loaded ") == 1, text
    assert "uvicorn.error" not in text, text
    assert not any(line.rstrip().endswith(" for receivers") for line in text.splitlines()), text


@pytest.mark.slow
def test_a_json_run_line_carries_its_fields_at_the_top_level(
    tmp_path: Path, store_dir: Path
) -> None:
    """`--log-format json`: the run's line has run_id, feature_view, status and duration_ms as
    fields of its own, matching what its message says."""
    text, _ = run_daemon(tmp_path, store_dir, "json", lambda t: bool(RUN_LINE.search(t)))
    entries = [json.loads(line) for line in text.splitlines()]
    runs = [e for e in entries if RUN_LINE.search(e["message"])]
    assert len(runs) == 1
    entry = runs[0]
    run_id, view = RUN_LINE.search(entry["message"]).groups()  # type: ignore[union-attr]
    assert (entry["run_id"], entry["feature_view"]) == (run_id, view)
    assert entry["status"] in {"pass", "warn", "fail", "error"}
    assert isinstance(entry["duration_ms"], int | float)
    assert entry["duration_ms"] >= 0
    assert all("run_id" not in e for e in entries if e is not entry)


def test_the_json_formatter_copies_only_the_known_extra_fields() -> None:
    """Known fields given with `extra=` become top-level keys; anything else stays out."""
    record = logging.LogRecord("featmon", logging.INFO, __file__, 1, "run %s", ("r1",), None)
    record.__dict__.update(run_id="r1", feature_view="v", status="pass", duration_ms=12.5)
    record.__dict__["password"] = "hunter2"
    entry = json.loads(_JsonFormatter().format(record))
    assert entry["message"] == "run r1"
    assert (entry["run_id"], entry["feature_view"], entry["status"]) == ("r1", "v", "pass")
    assert entry["duration_ms"] == 12.5
    assert "password" not in entry


def test_uvicorn_errors_are_kept_and_its_info_lines_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Once the sidecar runs, uvicorn's INFO lines are not logged at INFO and its errors are,
    named `uvicorn`."""
    caplog.set_level(logging.INFO)
    with serve(None):
        uvicorn_log = logging.getLogger("uvicorn.error")
        uvicorn_log.info("Started server process [1]")
        uvicorn_log.error("Exception in ASGI application")
    mine = [r for r in caplog.records if r.name.startswith("uvicorn")]
    assert [(r.name, r.levelname, r.getMessage()) for r in mine] == [
        ("uvicorn", "ERROR", "Exception in ASGI application")
    ]
