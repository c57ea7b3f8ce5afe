"""`featmon schema`: the JSON Schemas of config.yaml and of check files, for editors."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema

from checks.checkfile import CheckFile
from checks.duration import format_duration
from monitor.config import Config

SCHEMAS: dict[str, type[BaseModel]] = {
    "config.schema.json": Config,
    "checks.schema.json": CheckFile,
}


class _AsWritten(GenerateJsonSchema):
    """Defaults spelled as a user writes them: a duration as `30s`, not ISO 8601's `PT30S`."""

    def encode_default(self, dft: Any) -> Any:  # noqa: ANN401  # pydantic's own signature
        if isinstance(dft, timedelta):
            return format_duration(dft)
        return super().encode_default(dft)


def document(model: type[BaseModel]) -> dict[str, object]:
    body = model.model_json_schema(mode="validation", schema_generator=_AsWritten)
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
