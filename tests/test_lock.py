"""The committed locks: every requirement of pyproject.toml is pinned there within its range, every
pin carries hashes, and the container's lock pins the same versions as the development lock."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9._-]+)==(?P<version>[^\s;\\]+)\s*(?:;\s*(?P<marker>[^\\]+?))?\s*\\?$"
)


def pins(lock: str) -> dict[str, tuple[Version, int]]:
    """Each pinned package of a lock file (a path in the repository): its version and how many
    hashes follow it."""
    found: dict[str, tuple[Version, int]] = {}
    name = ""
    for line in (REPO / lock).read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if match := PIN.match(stripped):
            marker = match["marker"]
            if marker and not Marker(marker).evaluate():
                name = ""
                continue
            name = canonicalize_name(match["name"])
            found[name] = (Version(match["version"]), 0)
        elif stripped.startswith("--hash=sha256:") and name:
            version, hashes = found[name]
            found[name] = (version, hashes + 1)
    return found


def project_requirements(*extras: str) -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    texts = list(project["dependencies"])
    for extra in extras:
        texts += project["optional-dependencies"][extra]
    return [Requirement(text) for text in texts]


@pytest.mark.parametrize(
    ("lock", "extras"), [("requirements.txt", ("dev", "soda")), ("requirements/featmon.txt", ())]
)
def test_every_requirement_is_pinned_within_its_range(lock: str, extras: tuple[str, ...]) -> None:
    """A requirement missing from its lock, or pinned outside pyproject's range, fails here."""
    pinned = pins(lock)
    for requirement in project_requirements(*extras):
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{requirement.name} is not in {lock}: ./dev lock"
        version, _ = pinned[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{lock} pins {name}=={version}, outside {requirement.specifier}"
        )


@pytest.mark.parametrize(
    "lock", ["requirements.txt", *(f"requirements/{n}.txt" for n in ("featmon", "build", "feast"))]
)
def test_every_pin_carries_a_hash(lock: str) -> None:
    """pip installs a lock with --require-hashes, which refuses a pin without one."""
    pinned = pins(lock)
    assert pinned, f"{lock} pins nothing"
    assert [name for name, (_, hashes) in pinned.items() if hashes == 0] == []


def test_the_container_installs_the_versions_that_were_tested() -> None:
    """featmon.txt is resolved within requirements.txt, so the image runs what ./dev test ran."""
    dev = pins("requirements.txt")
    shipped = pins("requirements/featmon.txt")
    assert {name: dev[name][0] for name in shipped} == {
        name: version for name, (version, _) in shipped.items()
    }


def test_feast_of_the_integration_tests_is_pinned() -> None:
    """The real-Feast tests build repositories with exactly Feast 0.67.0."""
    assert pins("requirements/feast.txt")["feast"][0] == Version("0.67.0")
