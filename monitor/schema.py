"""`featmon schema`: the JSON Schemas of config.yaml and of check files, for editors."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from checks.model import CheckFile
from monitor.config import Config

SCHEMAS: dict[str, type[BaseModel]] = {
    "config.schema.json": Config,
    "checks.schema.json": CheckFile,
}


def document(model: type[BaseModel]) -> dict[str, object]:
    body = model.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **body}


def write(directory: Path) -> list[Path]:
    """Write both schemas into `directory`; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in SCHEMAS.items():
        path = directory / name
        path.write_text(json.dumps(document(model), indent=2, sort_keys=True) + "\n", "utf-8")
        written.append(path)
    return written
