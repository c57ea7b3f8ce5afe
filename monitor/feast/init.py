"""`featmon init --from-feast REPO --out DIR`: a config.yaml, one check file per feature view and
one per feature service with a serving log (a model), written from a Feast repository's
feature_store.yaml and its file registry.

- Stores come from feature_store.yaml: online `sqlite` -> feast-sqlite, `redis` -> redis with
  Feast's layout, `postgres` -> feast-sql; offline `file` -> parquet (rooted at the repository),
  `postgres` -> sql. Passwords are never copied: the URLs read `${FEAST_ONLINE_PASSWORD}` and
  `${FEAST_OFFLINE_PASSWORD}` from the environment.
- Views come from the registry (`monitor.feast.repo.read_repo`), each as its check file's entry
  (`monitor.feast.views`): join keys and their types, features and their types, the TTL, the
  batch source and the materialization history, which suggest the default checks and
  `materialized_every`.
- Feature services become models over the generated views (`monitor.feast.models`): live over
  their serving log, or commented out in their first view's check file when featmon knows no
  source of their requests.

Reading feature_store.yaml reports every mistake at its file, line and key (`ConfigError`); an
unreadable registry raises `RegistryError`; anything else that stops the generation raises
`InitError`. Nothing is written until everything has been generated and validated, and no
existing file is overwritten without `force`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from checks.checkfile import CheckFile
from checks.errors import ConfigError, Problem
from checks.plan import problems_of
from checks.served import Model, resolve
from checks.source import load_yaml, validate
from monitor.config import Config
from monitor.errors import MonitorError
from monitor.feast.models import GeneratedModel, LogStores, service_model
from monitor.feast.repo import (
    FeastRepo,
    FileStore,
    OtherStore,
    PostgresStore,
    RedisStore,
    RegistrySection,
    SqliteStore,
    beside,
    read_repo,
    relative_to_out,
)
from monitor.feast.views import (
    OFFLINE_STORE,
    ONLINE_STORE,
    GeneratedView,
    Naming,
    view_document,
)

log = logging.getLogger(__name__)

ONLINE_PASSWORD = "${FEAST_ONLINE_PASSWORD}"
OFFLINE_PASSWORD = "${FEAST_OFFLINE_PASSWORD}"


class InitError(MonitorError):
    """The Feast repository cannot be turned into a featmon configuration."""

    def __init__(self, source: str, detail: str) -> None:
        self.source = source
        self.detail = detail
        super().__init__(f"{source}: {detail}")


# --- stores ------------------------------------------------------------------------------------


def _postgres_url(section: PostgresStore, password: str) -> str:
    auth = section.user + (f":{password}" if section.password else "")
    query = {
        "sslmode": section.sslmode,
        "sslkey": section.sslkey_path,
        "sslcert": section.sslcert_path,
        "sslrootcert": section.sslrootcert_path,
    }
    if section.db_schema != "public":
        query["options"] = f"-csearch_path%3D{section.db_schema}"
    params = "&".join(f"{k}={v}" for k, v in query.items() if v)
    url = f"postgresql+psycopg://{auth}@{section.host}:{section.port}/{section.database}"
    return f"{url}?{params}" if params else url


def _redis_url(section: RedisStore, source: str) -> dict[str, Any]:
    """Feast's `host:port,db=0,ssl=true,password=...` as a redis:// URL; the password (if any)
    from ${FEAST_ONLINE_PASSWORD}."""
    parts = [part.strip() for part in section.connection_string.split(",") if part.strip()]
    nodes = [part for part in parts if "=" not in part]
    params = dict(part.split("=", 1) for part in parts if "=" in part)
    if not nodes:
        raise InitError(
            source,
            f"online_store.connection_string: expected host:port first, found "
            f"{section.connection_string!r}",
        )
    ssl = params.get("ssl", "false").strip().lower() in ("true", "1", "yes")
    auth = ""
    if "password" in params:
        auth = f"{params.get('username', '')}:{ONLINE_PASSWORD}@"
    database = params.get("db", "0") if section.redis_type == "redis" else "0"
    url = f"{'rediss' if ssl else 'redis'}://{auth}{nodes[0]}/{database}"
    return {"url": url, "cluster": section.redis_type == "redis_cluster"}


def online_store(repo: FeastRepo, out: Path) -> dict[str, Any]:
    section = repo.settings.online_store
    common = {"project": repo.project}
    if isinstance(section, SqliteStore):
        path = relative_to_out(beside(repo.root, section.path), out)
        return {"type": "feast-sqlite", "path": path, **common}
    if isinstance(section, RedisStore):
        return {
            "type": "redis",
            **_redis_url(section, str(repo.yaml_path)),
            "layout": "feast",
        } | common
    return {"type": "feast-sql", "url": _postgres_url(section, ONLINE_PASSWORD), **common}


def offline_store(repo: FeastRepo, out: Path) -> dict[str, Any] | None:
    section = repo.offline
    if isinstance(section, OtherStore):
        return None
    if isinstance(section, FileStore):
        return {"type": "parquet", "root": relative_to_out(repo.root, out)}
    return {"type": "sql", "url": _postgres_url(section, OFFLINE_PASSWORD)}


# --- documents ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Generated:
    """What `init` writes: file name (relative to the output directory) -> text, and notes."""

    files: Mapping[str, str]
    notes: tuple[str, ...] = ()
    env: tuple[str, ...] = ()


@dataclass(frozen=True)
class Written:
    files: tuple[Path, ...]
    notes: tuple[str, ...]
    env: tuple[str, ...]
    stale: tuple[Path, ...] = field(default=())


class _Dumper(yaml.SafeDumper):
    """Block lists indented under their key, as featmon's examples are written."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:  # noqa: ARG002 - PyYAML's signature
        super().increase_indent(flow, False)


def _dump(data: object, flow_leaves: bool = True) -> str:
    """YAML as featmon's examples write it: small mappings on one line (`flow_leaves`), or
    every mapping in block style (config.yaml, whose URLs are long)."""
    return yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=None if flow_leaves else False,
        width=100,
        allow_unicode=True,
    )


def _comment(lines: list[str]) -> str:
    return "".join(f"# {line}".rstrip() + "\n" for line in lines)


def generate(repo: FeastRepo, out: Path, now: datetime) -> Generated:
    """Every file `init` writes, validated, with what the user should know."""
    views = repo.registry.views_of(repo.project)
    if not views:
        found = sorted(repo.registry.projects())
        raise InitError(
            str(repo.registry_path),
            f"expected feature views of project {repo.project!r}, found none "
            f"(projects in the registry: {found or 'none'})",
        )
    offline = offline_store(repo, out)
    naming = Naming(
        project=repo.project,
        offline_kind=None if offline is None else offline["type"],
        versioned_tables=_versioned(repo),
        entities=repo.registry.entities_of(repo.project),
    )
    generated: list[GeneratedView] = [view_document(view, naming) for view in views]
    if not any(g.document for g in generated):
        raise InitError(
            str(repo.registry_path),
            "no feature view could be monitored: "
            + "; ".join(n for g in generated for n in g.notes),
        )
    models = _models(repo, generated, offline, out)
    hints: dict[str, list[GeneratedModel]] = {}
    for model in models:
        if model.hint_file is not None:
            hints.setdefault(model.hint_file, []).append(model)
    files = {
        f"checks/{g.name}.yaml": _check_file(repo, g, now, hints.get(f"checks/{g.name}.yaml", []))
        for g in generated
        if g.document
    }
    files.update({m.file: _model_file(repo, m, now) for m in models if m.document})
    notes = [note for g in generated for note in g.notes]
    notes += [note for m in models for note in m.notes]
    if isinstance(repo.offline, OtherStore):
        notes.append(f"the {repo.offline.type} offline store is not read by featmon")
    notes.extend(
        f"{count} {kind} of the registry are not monitored (they are not read from a store)"
        for kind, count in repo.registry.skipped.items()
        if count
    )
    stores = _stores(repo, out, offline, generated, models)
    env = sorted({var for var in (ONLINE_PASSWORD, OFFLINE_PASSWORD) if var in _dump(stores)})
    files["config.yaml"] = _config_file(repo, stores, env, now)
    _validate(files, [m.hint for m in models if m.hint is not None])
    return Generated(files, tuple(notes), tuple(e.strip("${}") for e in env))


def _models(
    repo: FeastRepo, generated: list[GeneratedView], offline: dict[str, Any] | None, out: Path
) -> list[GeneratedModel]:
    """A model per feature service of the project (`monitor.feast.models`)."""
    declared = {g.name: g.declared for g in generated if g.document and g.declared}
    parquet = OFFLINE_STORE if offline is not None and offline["type"] == "parquet" else None
    stores = LogStores(repo.root, parquet, out)
    services = repo.registry.services_of(repo.project)
    return [service_model(service, declared, stores, repo.project) for service in services]


def _stores(
    repo: FeastRepo,
    out: Path,
    offline: dict[str, Any] | None,
    generated: list[GeneratedView],
    models: list[GeneratedModel],
) -> dict[str, Any]:
    """The online store, the offline one when a view or a serving log reads it, and the
    Parquet stores of serving logs outside the repository."""
    stores: dict[str, Any] = {ONLINE_STORE: online_store(repo, out)}
    logs = [m.document["serving_log"]["store"] for m in models if m.document]
    if offline is not None and (any(g.uses_offline for g in generated) or OFFLINE_STORE in logs):
        stores[OFFLINE_STORE] = offline
    for model in models:
        stores.update(model.stores)
    return stores


def _versioned(repo: FeastRepo) -> bool:
    section = repo.settings.registry
    return isinstance(section, RegistrySection) and section.enable_online_feature_view_versioning


def _header(repo: FeastRepo, now: datetime) -> list[str]:
    updated = repo.registry.last_updated
    return [
        f"Generated by `featmon init --from-feast` on {now:%Y-%m-%d %H:%M} UTC from the Feast "
        f"project {repo.project!r}:",
        f"  feature_store.yaml: {repo.yaml_path}",
        f"  registry:           {repo.registry_path}"
        + (f" (last updated {updated:%Y-%m-%d %H:%M:%S} UTC)" if updated else ""),
    ]


def _config_file(repo: FeastRepo, stores: dict[str, Any], env: list[str], now: datetime) -> str:
    lines = _header(repo, now)
    if env:
        lines += [
            "",
            "Passwords are not copied from feature_store.yaml: set them in the environment,",
        ]
        lines += [f"  {var.strip('${}')}" for var in env]
    lines += [
        "",
        "Receivers (slack, pagerduty, webhook, alertmanager, file) and routes go under",
        "`receivers:`; see config.example.yaml of featmon.",
    ]
    body = _dump(
        {"stores": stores, "checks": "checks/*.yaml", "reports": {"dir": "featmon-reports"}},
        flow_leaves=False,
    )
    return _comment(lines) + "\n" + body


def _check_file(
    repo: FeastRepo, generated: GeneratedView, now: datetime, hints: list[GeneratedModel]
) -> str:
    """The view's check file; after it, commented out, the models over it that have no
    source of requests yet."""
    lines = [*_header(repo, now), "", *generated.comments]
    text = _comment(lines) + "\n" + _dump({"feature_views": [generated.document]})
    if not hints:
        return text
    explained = [line for model in hints for line in ("", *model.comments)]
    listed = _dump({"models": [model.hint for model in hints]}).splitlines()
    return text + "\n" + _comment(explained[1:]) + _comment(listed)


def _model_file(repo: FeastRepo, model: GeneratedModel, now: datetime) -> str:
    lines = [*_header(repo, now), "", *model.comments]
    return _comment(lines) + "\n" + _dump({"models": [model.document]})


def _validate(files: Mapping[str, str], hints: list[dict[str, Any]]) -> None:
    """What was generated must load: a failure here is featmon's bug, reported as InitError.
    Models (and the hints, as they would be uncommented) must resolve against the generated
    views, and their serving logs name generated stores."""
    check_files: list[CheckFile] = []
    stores: Collection[str] = ()
    for name, text in files.items():
        problems: list[Problem] = []
        try:
            doc = load_yaml(text, name)
            if name == "config.yaml":
                stores = validate(Config, doc).stores.keys()
            else:
                check_file = validate(CheckFile, doc)
                check_files.append(check_file)
                problems = [doc.problem(path, message) for path, message in problems_of(check_file)]
        except ConfigError as exc:
            problems = list(exc.problems)
        if problems:
            shown = "; ".join(str(problem) for problem in problems)
            raise InitError(name, f"the generated file does not validate: {shown}")
    views = {view.name: view for f in check_files for view in f.feature_views}
    models = [model for f in check_files for model in f.models]
    models += [Model.model_validate(hint) for hint in hints]
    for model in models:
        found = [message for _, message in resolve(model, views)[1]]
        log = model.serving_log
        if log is not None and log.store not in stores:
            found.append(f"expected a generated store, found {log.store!r}")
        if found:
            raise InitError(f"model {model.name}", f"the generated model does not resolve: {found}")


# --- writing -----------------------------------------------------------------------------------


def init_from_feast(repo_path: Path, out: Path, now: datetime, force: bool = False) -> Written:
    """Generate and write the configuration of `repo_path` into `out`."""
    repo = read_repo(repo_path)
    generated = generate(repo, out, now)
    targets = {out / name: text for name, text in generated.files.items()}
    existing = sorted(str(path) for path in targets if path.exists())
    if existing and not force:
        raise InitError(
            str(out), f"refusing to overwrite {', '.join(existing)}; pass --force to replace them"
        )
    for path, text in targets.items():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InitError(str(path), f"cannot write: {exc.strerror or exc}") from exc
    stale = tuple(sorted(p for p in (out / "checks").glob("*.yaml") if p not in targets))
    log.info("init: wrote %d files for Feast project %s into %s", len(targets), repo.project, out)
    return Written(tuple(targets), generated.notes, generated.env, stale)
