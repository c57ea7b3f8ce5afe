"""A Feast repository, read without Feast: its feature_store.yaml (`read_repo`) and, through
`monitor.feast.registry`, the file registry it names.

feature_store.yaml is read for what featmon needs (project, registry, online and offline store);
Feast's other keys are ignored, and a mistake in what is read is reported at its file, line and
key (`ConfigError`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from checks.errors import ConfigError
from checks.source import Document, load_yaml, validate
from monitor.feast.registry import Registry, read_registry
from monitor.loader import read_text


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class RegistrySection(_Section):
    registry_type: str = "file"
    path: str = Field(min_length=1)
    enable_online_feature_view_versioning: bool = False


class SqliteStore(_Section):
    type: Literal["sqlite"]
    path: str = "data/online.db"


class RedisStore(_Section):
    type: Literal["redis"]
    redis_type: Literal["redis", "redis_cluster"] = "redis"
    connection_string: str = "localhost:6379"


class PostgresStore(_Section):
    type: Literal["postgres"]
    host: str
    port: int | str = 5432
    database: str
    db_schema: str = "public"
    user: str
    password: str = ""
    sslmode: str | None = "require"
    sslkey_path: str | None = None
    sslcert_path: str | None = None
    sslrootcert_path: str | None = None


class FileStore(_Section):
    type: Literal["file", "dask", "duckdb"] = "file"


class OtherStore(_Section):
    """An offline store featmon does not read (BigQuery, Snowflake, Spark, ...)."""

    type: str


class _PostgresOffline(_Section):
    offline_store: PostgresStore


class FeatureStoreYaml(_Section):
    project: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
    registry: str | RegistrySection = "data/registry.db"
    online_store: SqliteStore | RedisStore | PostgresStore = Field(
        default_factory=lambda: SqliteStore(type="sqlite"), discriminator="type"
    )
    offline_store: dict[str, Any] | None = None
    entity_key_serialization_version: Literal[3] = 3


@dataclass(frozen=True)
class FeastRepo:
    """A Feast repository: where it is, its feature_store.yaml, and its registry."""

    root: Path
    yaml_path: Path
    settings: FeatureStoreYaml
    offline: FileStore | PostgresStore | OtherStore
    registry_path: Path
    registry: Registry

    @property
    def project(self) -> str:
        return self.settings.project


def read_repo(path: Path) -> FeastRepo:
    """Read feature_store.yaml (in the directory `path`, or `path` itself) and its registry."""
    yaml_path = path / "feature_store.yaml" if path.is_dir() else path
    doc = load_yaml(read_text(yaml_path), str(yaml_path))  # within the YAML input limits
    settings = validate(FeatureStoreYaml, _with_store_types(doc))
    root = yaml_path.resolve().parent
    section = settings.registry
    if isinstance(section, RegistrySection) and section.registry_type != "file":
        raise ConfigError(
            [
                doc.problem(
                    ("registry", "registry_type"),
                    f"expected a file registry, found registry_type {section.registry_type!r} "
                    "(featmon init reads registry.db files only)",
                )
            ]
        )
    location = section if isinstance(section, str) else section.path
    if "://" in location:
        raise ConfigError(
            [doc.problem(("registry",), f"expected a local registry file, found {location!r}")]
        )
    registry_path = beside(root, location)
    offline = _offline_store(settings, doc)
    return FeastRepo(
        root, yaml_path, settings, offline, registry_path, read_registry(registry_path)
    )


def _offline_store(
    settings: FeatureStoreYaml, doc: Document
) -> FileStore | PostgresStore | OtherStore:
    """Feast's default (`file`, or dask and duckdb over the same files), PostgreSQL (checked
    where it stands in the file), or another type, which featmon does not read."""
    section = settings.offline_store or {}
    kind = str(section.get("type", "file"))
    if kind in ("file", "dask", "duckdb"):
        return FileStore.model_validate({"type": kind})
    if kind == "postgres":
        return validate(_PostgresOffline, doc).offline_store
    return OtherStore(type=kind)


def _with_store_types(doc: Document) -> Document:
    """Feast accepts `online_store: sqlite` for `{type: sqlite}`: read it as that mapping."""
    if not isinstance(doc.data, dict):
        return doc
    data = dict(doc.data)
    for key in ("online_store", "offline_store"):
        if isinstance(data.get(key), str):
            data[key] = {"type": data[key]}
    return Document(doc.source, data, doc.lines)


def beside(root: Path, location: str) -> Path:
    path = Path(location).expanduser()
    return path if path.is_absolute() else root / path


def relative_to_out(target: Path, out: Path) -> str:
    """`target` as config.yaml (in `out`) should name it: relative when the two are near each
    other (at most two levels up), so that they can move together; absolute otherwise."""
    relative = Path(os.path.relpath(target.resolve(), out.resolve()))
    if relative.parts[:3].count("..") <= 2:
        return relative.as_posix()
    return str(target.resolve())
