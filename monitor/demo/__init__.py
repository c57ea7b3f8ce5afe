"""`featmon demo`: a local feature store with known faults, checked by the example configuration."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

CONFIG_NAME = "config.example.yaml"


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
