"""Hostile and huge YAML: `featmon validate`, `check` and `run` each refuse it with exit 3, a
located problem and no traceback, within 2 s and 200 MB (the contract in README, Security)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.hostile import HOSTILE

REPO = Path(__file__).resolve().parents[1]
WALL_SECONDS = 2.0
MAX_RSS_MB = 200

CONFIG = """\
stores:
  lake: {type: parquet, root: lake}
checks: checks/*.yaml
http: {listen: "127.0.0.1:0"}
"""


@dataclass(frozen=True)
class Measured:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    max_rss_mb: float


# Runs featmon as a child of its own, so that RUSAGE_CHILDREN is featmon's alone.
_MEASURE = """\
import json, resource, subprocess, sys, time
started = time.monotonic()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=60)
seconds = time.monotonic() - started
rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps([done.returncode, done.stdout, done.stderr, seconds, rss_kb / 1024]))
"""


def measured(root: Path, *argv: str) -> Measured:
    command = [sys.executable, "-m", "monitor.cli.main", "--log-level", "warning", *argv]
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command],
        cwd=root, capture_output=True, text=True, timeout=90, check=True,
    )  # fmt: skip
    return Measured(*json.loads(done.stdout))


@pytest.fixture(scope="module", params=list(HOSTILE))
def hostile(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A configuration directory whose one check file is the hostile file; the expected line."""
    root = tmp_path_factory.mktemp("hostile")
    (root / "checks").mkdir()
    (root / "config.yaml").write_text(CONFIG, encoding="utf-8")
    text, problem = HOSTILE[request.param]
    path = root / "checks" / "hostile.yaml"
    path.write_text(text(), encoding="utf-8")
    return f"{root}\n{problem.format(size=path.stat().st_size)}"


@pytest.mark.parametrize(
    "command", [["validate"], ["check", "--no-state"], ["run", "--watch-interval", "1s"]]
)
def test_a_hostile_file_is_refused_with_exit_3_fast_and_small(
    hostile: str, command: list[str]
) -> None:
    """Exit 3, the located problem and no traceback, within 2 s and 200 MB."""
    root, problem = hostile.split("\n")
    done = measured(Path(root), command[0], "--config", "config.yaml", *command[1:])
    assert "Traceback" not in done.stderr + done.stdout
    assert done.returncode == 3, done.stderr
    assert problem in done.stderr
    assert done.seconds < WALL_SECONDS, f"{done.seconds:.2f} s"
    assert done.max_rss_mb < MAX_RSS_MB, f"{done.max_rss_mb:.0f} MB"
