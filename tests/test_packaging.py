"""What ships: the published schemas match the models, and the wheel carries the demo's
configuration and the report templates."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from monitor.cli import schema

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", sorted(schema.SCHEMAS))
def test_the_published_schema_is_up_to_date(name: str) -> None:
    """schemas/ is what `featmon schema` writes; regenerate it after changing a model."""
    published = json.loads((REPO / "schemas" / name).read_text(encoding="utf-8"))
    assert published == schema.document(schema.SCHEMAS[name]), "run: featmon schema --out schemas"


ISO_DURATION = re.compile(r'"P(?=\d|T)(\d+[WD])*(T(\d+(\.\d+)?[HMS])+)?"')


@pytest.mark.parametrize("name", sorted(schema.SCHEMAS))
def test_duration_defaults_are_spelled_as_users_write_them(name: str) -> None:
    """A default of 5 minutes reads `5m` in the schema, as in a check file, never `PT5M`."""
    assert ISO_DURATION.findall(json.dumps(schema.document(schema.SCHEMAS[name]))) == []


def test_the_iso_spelling_would_be_caught() -> None:
    """The check above can fail: pydantic's own spellings of 5 minutes and 1 day match."""
    assert [bool(ISO_DURATION.search(t)) for t in ('"PT5M"', '"P1D"', '"P1DT4H"', '"P3"')] == [
        True, True, True, False,
    ]  # fmt: skip
    assert '"default": "5m"' in json.dumps(schema.document(schema.SCHEMAS["config.schema.json"]))


@pytest.mark.slow
def test_the_wheel_ships_the_demo_config_and_the_templates(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(REPO)],
        check=True, timeout=300,
    )  # fmt: skip
    wheel = next(tmp_path.glob("featmon-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "monitor/demo/config.example.yaml" in names
    assert {
        f"monitor/demo/examples/checks/{n}.yaml"
        for n in ("user_stats", "merchant_stats", "transactions")
    } <= names
    assert "alerts/templates/report.html.j2" in names
    assert "featmon-0.1.0.dist-info/entry_points.txt" in names
