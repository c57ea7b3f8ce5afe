"""The README's runnable shell blocks (a `<!-- runnable -->` line before the fence) run as
written, after the demo, in a copy of the repository's example files: whatever the day."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MARK = "<!-- runnable -->"
FENCE = re.compile(r"^```(\w*)\s*$")


def runnable_commands(text: str) -> list[tuple[int, str]]:
    """(line, command) of every line of every block marked runnable, comments dropped."""
    lines = text.splitlines()
    out: list[tuple[int, str]] = []
    for index, line in enumerate(lines):
        if line.strip() != MARK:
            continue
        opening = FENCE.match(lines[index + 1])
        where = f"README.md:{index + 1}: {MARK} must stand right before a ```sh fence"
        assert opening is not None, where
        assert opening[1] == "sh", where
        for number in range(index + 2, len(lines)):
            if FENCE.match(lines[number]):
                break
            command = re.sub(r"\s+#.*$", "", lines[number]).strip()
            if command:
                out.append((number + 1, command))
    return out


def test_the_runnable_blocks_are_found() -> None:
    """The tour's block is marked (a README without marks would make the test below empty)."""
    commands = [c for _, c in runnable_commands((REPO / "README.md").read_text(encoding="utf-8"))]
    assert "featmon validate --config config.example.yaml" in commands
    assert len(commands) >= 5


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A copy of the example files where `featmon demo` has run, as after `./dev demo`."""
    root = tmp_path_factory.mktemp("readme")
    shutil.copy(REPO / "config.example.yaml", root)
    shutil.copytree(REPO / "examples", root / "examples")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEATMON_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    demo = subprocess.run(
        ["featmon", "--log-level", "warning", "demo"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stdout + demo.stderr
    return root, env


@pytest.mark.slow
@pytest.mark.parametrize(
    ("line", "command"),
    runnable_commands((REPO / "README.md").read_text(encoding="utf-8")),
    ids=str,
)
def test_a_readme_command_runs_as_written(
    workspace: tuple[Path, dict[str, str]], line: int, command: str
) -> None:
    """Exit 0, 1 or 2 (what the checks found), never 3 (an error) or 4 (a usage error), and no
    traceback."""
    root, env = workspace
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert "Traceback" not in output
    assert done.returncode in {0, 1, 2}, f"README.md:{line}: {command}\n{output}"
