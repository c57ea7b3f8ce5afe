"""Read config.yaml and every check file it names; validate all of them together.

Every problem in every file is collected and raised at once as one `ConfigError`, each located
at file, line and YAML path. Relative paths in config.yaml are resolved against its directory.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from pydantic import SecretStr

from alerts.routing import receiver_problems
from checks.checkfile import CheckFile
from checks.compose import DEFAULT_LIMITS, Limits
from checks.errors import ConfigError, Problem
from checks.kinds import kind_of, soda
from checks.model import FeatureView
from checks.plan import PlannedCheck, plan_view, problems_of
from checks.result import subject_key
from checks.salvage import salvage
from checks.schedule import Schedule
from checks.served import Model, PlannedModelCheck, ServedModel, plan_model, resolve
from checks.soda_contract import problems as soda_problems
from checks.source import Document, interpolate, load_yaml, too_large, validate
from monitor.config import (
    OFFLINE_TYPES,
    ONLINE_TYPES,
    Config,
    FeastSqliteStoreConfig,
    ParquetStoreConfig,
    RedisStoreConfig,
    SqlStoreConfig,
    StoreConfig,
    template_fields,
)
from monitor.daemon.scheduler import problems as schedule_problems
from monitor.stores.sql.serving_log import ENGINES as SERVING_LOG_ENGINES

log = logging.getLogger(__name__)

Owner = TypeVar("Owner", FeatureView, Model)


@dataclass(frozen=True)
class LoadedView:
    """One feature view, where it was declared, and its planned checks."""

    view: FeatureView
    file: str
    line: int
    planned: tuple[PlannedCheck, ...]


@dataclass(frozen=True)
class LoadedModel:
    """One model, its features resolved against the views, where it was declared, and its
    planned checks. `views` are the declared views it is served from, in the order of
    `served.views`: where a request sample is read online."""

    served: ServedModel
    file: str
    line: int
    planned: tuple[PlannedModelCheck, ...]
    views: tuple[FeatureView, ...]

    @property
    def name(self) -> str:
        return self.served.name

    @property
    def key(self) -> str:
        """What its runs, claims and alerts are keyed by: `model:<name>` (`CheckResult.subject`)."""
        return subject_key(None, self.name)


@dataclass(frozen=True)
class Loaded:
    """A validated configuration: config.yaml and every check file."""

    path: Path
    config: Config
    views: tuple[LoadedView, ...]
    check_files: tuple[str, ...]
    models: tuple[LoadedModel, ...] = ()

    @property
    def planned(self) -> tuple[PlannedCheck, ...]:
        return tuple(p for v in self.views for p in v.planned)

    def only(
        self, views: Sequence[str] = (), checks: Sequence[str] = (), models: Sequence[str] = ()
    ) -> Loaded:
        """The same configuration narrowed to the named views, models and check ids. Naming
        views or models keeps only those named (views alone: no model; models alone: no
        view); naming neither keeps every one. Raises `ValueError` naming what is not
        configured, with the names that are."""
        known_views = [v.view.name for v in self.views]
        missing = [name for name in views if name not in known_views]
        if missing:
            raise ValueError(f"no feature view {_listed(missing)} (views: {_listed(known_views)})")
        known_models = [m.name for m in self.models]
        missing = [name for name in models if name not in known_models]
        if missing:
            raise ValueError(f"no model {_listed(missing)} (models: {_listed(known_models)})")
        named = bool(views or models)
        kept = [v for v in self.views if not named or v.view.name in views]
        kept_models = [m for m in self.models if not named or m.name in models]
        return self._only_checks(kept, kept_models, checks)

    def _only_checks(
        self, kept: list[LoadedView], models: list[LoadedModel], checks: Sequence[str]
    ) -> Loaded:
        """The views and models `kept`, with only the checks `checks` (empty: all)."""
        known_checks = [p.id for v in kept for p in v.planned]
        known_checks += [p.id for m in models for p in m.planned]
        missing = [name for name in checks if name not in known_checks]
        if missing:
            raise ValueError(f"no check {_listed(missing)} (checks: {_listed(known_checks)})")
        if checks:
            kept = [replace(v, planned=tuple(p for p in v.planned if p.id in checks)) for v in kept]
            kept = [v for v in kept if v.planned]
            models = [
                replace(m, planned=tuple(p for p in m.planned if p.id in checks)) for m in models
            ]
            models = [m for m in models if m.planned]
        return replace(self, views=tuple(kept), models=tuple(models))


def _listed(names: Sequence[str]) -> str:
    return ", ".join(repr(name) for name in names)


def load(
    config_path: Path | str, env: Mapping[str, str] | None = None, now: datetime | None = None
) -> Loaded:
    """Load and validate everything; raise `ConfigError` with every problem found. Schedules
    are checked by the scheduler's own code, a cron expression against `now` (default: now)."""
    env = dict(os.environ) if env is None else env
    now = datetime.now(UTC) if now is None else now
    path = Path(config_path)
    config_doc = _read(path, env)
    config = validate(Config, config_doc)
    base = path.resolve().parent
    config = _resolve_paths(config, base, _data_dir(env, base))
    problems: list[Problem] = []
    if config.route is not None:
        problems.extend(
            config_doc.problem(p, m) for p, m in receiver_problems(config.route, config.receivers)
        )
    files = _check_files(config, config_doc, base, problems)
    views: list[LoadedView] = []
    seen_views: dict[str, LoadedView] = {}
    seen_ids: dict[str, str] = {}
    declared_models: list[tuple[Document, int, Model]] = []
    for file in files:
        try:
            doc = _read(file, env)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        try:
            check_file = validate(CheckFile, doc)
        except ConfigError as exc:
            problems.extend(exc.problems)
            salvaged = salvage(doc)  # the rules across fields still run on what is valid
            if salvaged is None:
                continue
            doc, check_file = salvaged
        problems.extend(doc.problem(p, message) for p, message in problems_of(check_file))
        for index, declared in enumerate(check_file.feature_views):
            view_path = ("feature_views", index)
            view = _with_ids_file(declared, "online", file.parent)
            view = _read_contracts(view, file.parent, doc, view_path, problems)
            loaded = LoadedView(
                view, doc.source, doc.line_of(view_path), tuple(plan_view(view, view_path))
            )
            problems.extend(_store_problems(view, view_path, doc, config))
            problems.extend(_schedule_problems(doc, view_path, view.schedule, now))
            first = seen_views.get(view.name)
            if first is not None:
                problems.append(_declared_again(doc, view_path, "view", view.name, first))
                continue
            seen_views[view.name] = loaded
            problems.extend(_unique_ids(doc, loaded.planned, seen_ids))
            views.append(loaded)
        declared_models.extend((doc, i, m) for i, m in enumerate(check_file.models))
    known = {v.view.name: v.view for v in views}
    models = _load_models(declared_models, known, config, now, seen_ids, problems)
    if problems:
        raise ConfigError(problems)
    log.info(
        "loaded %s: %d check files, %d feature views, %d models, %d checks",
        path,
        len(files),
        len(views),
        len(models),
        len(seen_ids),
    )
    return Loaded(path, config, tuple(views), tuple(str(f) for f in files), tuple(models))


def _schedule_problems(
    doc: Document, path: tuple[str | int, ...], schedule: Schedule, now: datetime
) -> list[Problem]:
    """The schedule of the view or model at `path`, as the scheduler's own code checks it."""
    return [
        doc.problem((*path, "schedule", key), message)
        for key, message in schedule_problems(schedule, now)
    ]


def _declared_again(
    doc: Document,
    path: tuple[str | int, ...],
    what: str,
    name: str,
    first: LoadedView | LoadedModel,
) -> Problem:
    """A view or model named as one declared before, pointing at the first."""
    return doc.problem(
        (*path, "name"),
        f"expected a unique {what} name, found {name!r} again (first at {first.file}:{first.line})",
    )


def _unique_ids(
    doc: Document, planned: Sequence[PlannedCheck | PlannedModelCheck], seen_ids: dict[str, str]
) -> list[Problem]:
    """A problem for each check id seen before (in any file); the new ids are remembered."""
    out: list[Problem] = []
    for p in planned:
        where = f"{doc.source}:{doc.line_of(p.path)}"
        if p.id in seen_ids:
            out.append(
                doc.problem(
                    p.path,
                    f"expected a unique check id, found {p.id!r} again "
                    f"(first at {seen_ids[p.id]}); give one a `name`",
                )
            )
        seen_ids.setdefault(p.id, where)
    return out


def _load_models(
    declared: list[tuple[Document, int, Model]],
    views: dict[str, FeatureView],
    config: Config,
    now: datetime,
    seen_ids: dict[str, str],
    problems: list[Problem],
) -> list[LoadedModel]:
    """Every model, its features resolved against the views of every check file; a model's
    name is unique among models, and its sources must name stores of the right kind."""
    out: list[LoadedModel] = []
    seen: dict[str, LoadedModel] = {}
    for doc, index, written in declared:
        path: tuple[str | int, ...] = ("models", index)
        model = _with_ids_file(written, "requests", Path(doc.source).parent)
        served, found = resolve(model, views, path)
        problems.extend(doc.problem(p, m) for p, m in found)
        problems.extend(_model_store_problems(model, path, doc, config))
        problems.extend(_schedule_problems(doc, path, model.schedule, now))
        first = seen.get(model.name)
        if first is not None:
            problems.append(_declared_again(doc, path, "model", model.name, first))
        if served is None or first is not None:
            continue
        declared_views = tuple(views[view.name] for view in served.views)
        problems.extend(_offline_only(model, declared_views, path, doc))
        planned = tuple(plan_model(served, path))
        loaded = LoadedModel(served, doc.source, doc.line_of(path), planned, declared_views)
        seen[model.name] = loaded
        problems.extend(_unique_ids(doc, planned, seen_ids))
        out.append(loaded)
    return out


def _offline_only(
    model: Model, views: Sequence[FeatureView], path: tuple[str | int, ...], doc: Document
) -> list[Problem]:
    """A request sample is read in each view's online store: every view needs one."""
    if model.requests is None:
        return []
    lacking = [view.name for view in views if view.online is None]
    if not lacking:
        return []
    found = f"none for {_listed(lacking)}"
    message = (
        f"expected every view of a request-sampled model to have an `online` source, found {found}"
    )
    return [doc.problem((*path, "requests"), message)]


def _model_store_problems(
    model: Model, path: tuple[str | int, ...], doc: Document, config: Config
) -> list[Problem]:
    """The serving log, or the request sample's query, is on an offline store; a serving log
    names the location key of its store's type."""
    source = model.serving_log or model.requests
    side = "serving_log" if model.serving_log is not None else "requests"
    if source is None or source.store is None:
        return []
    where = (*path, side, "store")
    store = config.stores.get(source.store)
    if store is None or store.type not in OFFLINE_TYPES:
        known = sorted(n for n, s in config.stores.items() if s.type in OFFLINE_TYPES)
        found = repr(source.store) if store is None else f"{source.store!r} of type {store.type}"
        return [doc.problem(where, f"expected one of the offline stores {known}, found {found}")]
    log_source = model.serving_log
    if log_source is not None:
        wanted = "path" if store.type == "parquet" else "table"
        if getattr(log_source, wanted) is None:
            return [
                doc.problem(
                    (*path, side, wanted),
                    f"expected `{wanted}` for the {store.type} store {source.store!r}, found none",
                )
            ]
        engine = _engine_of(store)
        if engine not in SERVING_LOG_ENGINES:
            return [
                doc.problem(
                    where,
                    f"expected a PostgreSQL, DuckDB or Parquet store for a serving log (its "
                    f"quantiles need a discrete percentile), found {source.store!r} on {engine}",
                )
            ]
    return []


def _engine_of(store: StoreConfig) -> str:
    """The SQLAlchemy backend an offline store runs on, from its URL's scheme (`sqlite` of
    `sqlite:///x.db`, `postgresql` of `postgresql+psycopg://...`); `duckdb` for Parquet."""
    if isinstance(store, SqlStoreConfig):
        scheme, _, _ = store.url.get_secret_value().partition("://")
        return scheme.partition("+")[0]
    return "duckdb"


def _read(path: Path, env: Mapping[str, str]) -> Document:
    return interpolate(load_yaml(read_text(path), str(path)), env)


def read_text(path: Path, limits: Limits = DEFAULT_LIMITS) -> str:
    """The text of a file the user wrote, refused (`ConfigError`) when it is larger than
    `limits.max_bytes`: its size is looked at before it is read, and no more than that is
    read (a file that grows, a pipe or a device is refused all the same)."""
    try:
        with path.open("rb") as file:
            size = os.fstat(file.fileno()).st_size
            if size > limits.max_bytes:
                raise ConfigError([Problem(str(path), 0, "", too_large(size, limits))])
            data = file.read(limits.max_bytes + 1)
            if len(data) > limits.max_bytes:  # it grows, or is a pipe or a device
                found = f"more than {limits.max_bytes}"
                raise ConfigError([Problem(str(path), 0, "", too_large(found, limits))])
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError([Problem(str(path), 0, "", f"cannot read the file: {reason}")]) from exc


def _check_files(config: Config, doc: Document, base: Path, problems: list[Problem]) -> list[Path]:
    files: list[Path] = []
    globs = config.check_globs
    for index, pattern in enumerate(globs):
        where = ("checks", index) if isinstance(config.checks, tuple) else ("checks",)
        # glob.glob, not Path.glob: a user's pattern may be absolute.
        found = glob.glob(pattern, root_dir=base, recursive=True)  # noqa: PTH207 - pathlib's glob has no root_dir and cannot return paths relative to it
        matches = sorted(base / m for m in found if (base / m).is_file())
        if not matches:
            problems.append(
                doc.problem(
                    where,
                    f"expected the glob to match at least one check file, found none for {pattern!r}",
                )
            )
        files.extend(m for m in matches if m not in files)
    return files


def _store_problems(
    view: FeatureView, view_path: tuple[str | int, ...], doc: Document, config: Config
) -> list[Problem]:
    """Each source must name a store of the right kind, with the right location key."""
    out: list[Problem] = []
    if view.online is not None and view.online.query is not None and view.offline is None:
        out.append(
            doc.problem(
                (*view_path, "online", "query"),
                "expected an `offline` source to run the population query on, found none",
            )
        )
    for side, kinds in (("online", ONLINE_TYPES), ("offline", OFFLINE_TYPES)):
        source = getattr(view, side)
        if source is None:
            continue
        where = (*view_path, side, "store")
        store = config.stores.get(source.store)
        if store is None:
            known = sorted(n for n, s in config.stores.items() if s.type in kinds)
            out.append(
                doc.problem(
                    where, f"expected one of the {side} stores {known}, found {source.store!r}"
                )
            )
        elif store.type not in kinds:
            out.append(
                doc.problem(
                    where, f"expected an {side} store, found {source.store!r} of type {store.type}"
                )
            )
        elif isinstance(store, RedisStoreConfig) and store.key_template is not None:
            names = template_fields(store.key_template) or frozenset()
            allowed = {"feature_view", *view.join_keys}
            if names - allowed or not set(view.join_keys) <= names:
                out.append(
                    doc.problem(
                        where,
                        f"expected the key template of {source.store!r} to name the join keys "
                        f"{list(view.join_keys)} (and optionally feature_view), found "
                        f"{sorted(names)} in {store.key_template!r}",
                    )
                )
        elif side == "offline":
            wanted = "path" if store.type == "parquet" else "table"
            if getattr(source, wanted) is None:
                out.append(
                    doc.problem(
                        (*view_path, side, wanted),
                        f"expected `{wanted}` for the {store.type} store {source.store!r}, found none",
                    )
                )
    return out


DATA_DIR_VAR = "FEATMON_DATA_DIR"
"""Where the state database and reports go when config.yaml does not say (the container sets
it to its data volume); unset: next to config.yaml."""


def _data_dir(env: Mapping[str, str], base: Path) -> Path:
    """`$FEATMON_DATA_DIR` (relative to config.yaml's directory), or that directory."""
    value = env.get(DATA_DIR_VAR, "").strip()
    return _absolute(value, base) if value else base


def _resolve_paths(config: Config, base: Path, data: Path) -> Config:
    """Make store paths absolute against the config file's directory; the state database and
    reports directory left to their defaults go to `data`."""
    stores = {name: _resolve_store(store, base) for name, store in config.stores.items()}
    reports_base = base if "dir" in config.reports.model_fields_set else data
    state_base = base if "url" in config.state.model_fields_set else data
    reports = config.reports.model_copy(
        update={"dir": str(_absolute(config.reports.dir, reports_base))}
    )
    state = config.state.model_copy(
        update={"url": _absolute_file_url(config.state.url, state_base)}
    )
    return config.model_copy(update={"stores": stores, "reports": reports, "state": state})


def _with_ids_file(owner: Owner, part: str, base: Path) -> Owner:
    """An `ids_file` (of a view's `online` source, or of a model's `requests`) is relative to
    the check file that names it."""
    source = getattr(owner, part)
    if source is None or source.ids_file is None:
        return owner
    ids_file = str(_absolute(source.ids_file, base))
    return owner.model_copy(update={part: source.model_copy(update={"ids_file": ids_file})})


def _read_contracts(
    view: FeatureView,
    base: Path,
    doc: Document,
    view_path: tuple[str | int, ...],
    problems: list[Problem],
) -> FeatureView:
    """A Soda check's `contract_file` is relative to the check file; its text is read here, at
    the edge, so that planning (pure) knows the contract's checks. Problems name the file."""
    checks = list(view.checks)
    for position, any_check in enumerate(checks):
        if kind_of(any_check.kind).measured_by != "contract":
            continue
        check = soda.KIND.narrow(any_check)
        if check.contract_file is None:
            continue
        path = _absolute(check.contract_file, base)
        where = (*view_path, "checks", position)
        try:
            text = read_text(path)
        except ConfigError as exc:
            reason = exc.problems[0].message.removeprefix("cannot read the file: ")
            problems.append(doc.problem((*where, "contract_file"), f"cannot read {path}: {reason}"))
            continue
        read = check.model_copy(update={"contract_file": str(path), "contract": text})
        checks[position] = read
        problems.extend(doc.problem(p, m) for p, m in soda_problems(view, read, where))
    return view.model_copy(update={"checks": tuple(checks)})


def _resolve_store(store: StoreConfig, base: Path) -> StoreConfig:
    if isinstance(store, FeastSqliteStoreConfig):
        return store.model_copy(update={"path": str(_absolute(store.path, base))})
    if isinstance(store, ParquetStoreConfig):
        return store.model_copy(update={"root": str(_absolute(store.root, base))})
    if isinstance(store, SqlStoreConfig):
        return store.model_copy(update={"url": _absolute_file_url(store.url, base)})
    return store


def _absolute(value: str, base: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _absolute_file_url(secret: SecretStr, base: Path) -> SecretStr:
    """`sqlite:///rel.db` and `duckdb:///rel.duckdb` point at files relative to config.yaml."""
    url = secret.get_secret_value()
    for prefix in ("sqlite:///", "duckdb:///"):
        rest = url.removeprefix(prefix)
        if rest != url and rest and not rest.startswith(("/", ":memory:")):
            return SecretStr(prefix + str(base / rest))
    return secret
