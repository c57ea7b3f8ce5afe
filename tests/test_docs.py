"""The documentation's examples are real: every `yaml` block of docs/reference.md and README.md
loads through featmon's own loader, and the plain-hash example measures what the page says.

A block is read by its shape: a mapping with `feature_views` or `models` is a check file (loaded by
`monitor.loader.load`, as `featmon validate` does, beside a config.yaml declaring the stores it
names, taken from the page's configuration blocks); a mapping with `stores` is a config.yaml
(validated as the `Config` model); a mapping of other config.yaml sections (receivers, route,
...) is validated as `Config` with a placeholder store; a list of checks is loaded inside a
feature view of its own. A block that is deliberately partial or shows a mistake says
`# not validated: <reason>` on its first line, or `<!-- not validated: <reason> -->` just
before it; it is reported as skipped with that reason, never silently.
"""

from __future__ import annotations

import json
import re
import shlex
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Literal

import pytest
import redis
from pydantic import BaseModel

from checks.errors import ConfigError
from checks.model import (
    AnyCheck,
    FeatureView,
    OfflineSource,
    OnlineSource,
    Partition,
    ReferenceWindow,
    RowCountChange,
)
from checks.observation import FeatureReading, FeatureState
from checks.schedule import Schedule
from checks.served import AnyModelCheck, Model, RequestSample, ServingLog
from checks.source import interpolate, load_yaml, validate
from monitor.cli.main import main
from monitor.config import (
    Config,
    FeastSqliteStoreConfig,
    FeastSqlStoreConfig,
    ParquetStoreConfig,
    RedisStoreConfig,
    SqlStoreConfig,
)
from monitor.loader import load
from monitor.stores.redis.hash_layout import ValueReader
from tests.redis_fixtures import REDIS_URL, admin_client, write_hash

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference.md"
README = ROOT / "README.md"

_FENCE = re.compile(r"^```(\S*)\s*$")
_LABEL = re.compile(r"^<!--\s*(.*?)\s*-->$")
_SKIP = re.compile(r"^#\s*not validated:\s*(\S.*)$")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")
_CONFIG_SECTIONS = frozenset(Config.model_fields)
KINDS = tuple(
    check.model_fields["kind"].annotation.__args__[0] for check in typing.get_args(AnyCheck)
)


class DocExampleError(AssertionError):
    """A documentation example that featmon refuses, located at its file and line."""


@dataclass(frozen=True)
class Block:
    """One fenced code block of a Markdown file."""

    doc: str  # the file, as shown in messages
    line: int  # the line of the opening fence
    lang: str
    text: str
    label: str | None  # the HTML comment just before the block, if any

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"

    @property
    def skip_reason(self) -> str | None:
        first = self.text.split("\n", 1)[0].strip()
        marked = _SKIP.match(first) or _SKIP.match(f"# {self.label or ''}")
        return marked.group(1) if marked else None


def blocks(path: Path, shown: str | None = None) -> list[Block]:
    """The fenced blocks of a Markdown file, in order."""
    lines = path.read_text(encoding="utf-8").split("\n")
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        end = next(
            (i for i in range(index + 1, len(lines)) if lines[i].rstrip() == "```"), len(lines)
        )
        before = next((lines[i].strip() for i in range(index - 1, -1, -1) if lines[i].strip()), "")
        label = _LABEL.match(before)
        text = "\n".join(lines[index + 1 : end]) + "\n"
        found.append(
            Block(shown or path.name, index + 1, opening.group(1), text, label and label.group(1))
        )
        index = end + 1
    return found


def yaml_blocks(path: Path, shown: str | None = None) -> list[Block]:
    return [block for block in blocks(path, shown) if block.lang in ("yaml", "yml")]


def placeholder_env(*texts: str) -> dict[str, str]:
    """A value for every `${VAR}` without a default: the examples must not need a real one."""
    return {
        match.group(1): f"example-{match.group(1).lower()}"
        for text in texts
        for match in _VAR.finditer(text)
        if match.group(2) is None
    }


def _data(block: Block) -> object:
    try:
        return load_yaml(block.text, block.where).data
    except ConfigError as exc:
        raise DocExampleError(_located(block, exc)) from exc


def _located(block: Block, exc: ConfigError, written: Path | None = None) -> str:
    """Every problem, at the line of the Markdown file it stands on when it is in the block."""
    out = []
    for problem in exc.problems:
        in_block = written is None or Path(problem.file).resolve() == written.resolve()
        where = (
            f"{block.doc}:{block.line + problem.line}"
            if in_block and problem.line
            else f"{block.where} (in {Path(problem.file).name}, built for the example)"
        )
        out.append(f"{where}: {problem.path}: {problem.message}".replace(": : ", ": "))
    return f"the yaml block at {block.where} is refused by featmon:\n  " + "\n  ".join(out)


def store_declarations(page: list[Block], before: int) -> dict[str, object]:
    """Store name -> its declaration (as written) in the page's config.yaml blocks: the nearest
    declaration before line `before`, else the first after it."""
    earlier: dict[str, object] = {}
    later: dict[str, object] = {}
    for block in page:
        if block.skip_reason is not None:
            continue
        data = _data(block)
        if not isinstance(data, dict) or not isinstance(data.get("stores"), dict):
            continue
        for name, declared in data["stores"].items():
            if block.line < before:
                earlier[name] = declared
            else:
                later.setdefault(name, declared)
    return {**later, **earlier}


def _stores_named(data: Mapping[str, object]) -> list[str]:
    names: list[str] = []
    views = data.get("feature_views")
    for view in views if isinstance(views, list) else []:
        for side in ("online", "offline"):
            source = view.get(side) if isinstance(view, dict) else None
            if isinstance(source, dict) and isinstance(source.get("store"), str):
                names.append(source["store"])
    models = data.get("models")
    for model in models if isinstance(models, list) else []:
        for side in ("serving_log", "requests"):
            source = model.get(side) if isinstance(model, dict) else None
            if isinstance(source, dict) and isinstance(source.get("store"), str):
                names.append(source["store"])
    return names


def validate_block(block: Block, page: list[Block], workdir: Path) -> str:
    """Validate one yaml block as what its shape says it is; return what it was validated as.
    Raises DocExampleError, located at the block's file and line."""
    data = _data(block)
    if isinstance(data, dict) and ("feature_views" in data or "models" in data):
        _load_check_file(block, data, page, workdir)
        return "check file"
    if isinstance(data, dict) and "stores" in data:
        _validate_config(block, block.text)
        return "config.yaml"
    if isinstance(data, dict) and data and set(data) <= _CONFIG_SECTIONS:
        # The placeholder comes after the block's own lines, so that those keep their numbers.
        placeholder = "stores: {lake: {type: parquet}}\nchecks: checks/*.yaml\n"
        _validate_config(block, block.text + placeholder)
        return "config.yaml sections"
    if isinstance(data, list) and data and all(isinstance(c, dict) and "kind" in c for c in data):
        _load_check_list(block, data, workdir)
        return "list of checks"
    raise DocExampleError(
        f"the yaml block at {block.where} is neither a config.yaml nor a check file; mark it "
        "`# not validated: <reason>` if it is deliberately partial"
    )


def _validate_config(block: Block, text: str) -> None:
    try:
        doc = interpolate(load_yaml(text, block.where), placeholder_env(text))
        validate(Config, doc)
    except ConfigError as exc:
        raise DocExampleError(_located(block, exc)) from exc


def _load_check_file(
    block: Block, data: Mapping[str, object], page: list[Block], workdir: Path
) -> None:
    declared = store_declarations(page, block.line)
    names = _stores_named(data)
    unknown = sorted({name for name in names if name not in declared})
    if unknown:
        raise DocExampleError(
            f"the check file at {block.where} names stores {unknown} that no config.yaml block "
            f"of {block.doc} declares"
        )
    stores = {name: declared[name] for name in dict.fromkeys(names)}
    config = json.dumps({"stores": stores, "checks": "checks/*.yaml"}, indent=2)
    _load(block, block.text, config, workdir)


def _load_check_list(block: Block, checks: list[object], workdir: Path) -> None:
    """Checks shown on their own, loaded in a view with online and offline sources that
    declares every feature they name."""
    features: dict[str, str] = {"value": "float"}
    for check in checks:
        assert isinstance(check, dict)
        named = check.get("features") or [check.get("feature")]
        features |= {name: "float" for name in named if isinstance(name, str)}
    view = {
        "name": "example",
        "entity": "user_id",
        "ttl": "1d",
        "features": features,
        "online": {"store": "online"},
        "offline": {"store": "warehouse", "table": "example", "ingested_at": "created_ts"},
        "checks": checks,
    }
    stores = {
        "online": {"type": "feast-sqlite", "path": "online.db", "project": "p"},
        "warehouse": {"type": "sql", "url": "sqlite:///warehouse.db"},
    }
    config = json.dumps({"stores": stores, "checks": "checks/*.yaml"})
    _load(block, json.dumps({"feature_views": [view]}, indent=2), config, workdir, located=False)


def _load(
    block: Block, check_text: str, config: str, workdir: Path, *, located: bool = True
) -> None:
    (workdir / "checks").mkdir(parents=True, exist_ok=True)
    check_file = workdir / "checks" / "example.yaml"
    check_file.write_text(check_text, encoding="utf-8")
    config_file = workdir / "config.yaml"
    config_file.write_text(config, encoding="utf-8")
    try:
        load(config_file, placeholder_env(check_text, config))
    except ConfigError as exc:
        raise DocExampleError(_located(block, exc, check_file if located else None)) from exc


# --- every yaml block of the docs ---------------------------------------------------------------

PAGES = {REFERENCE: "docs/reference.md", README: "README.md"}
BLOCKS = [block for path, shown in PAGES.items() for block in yaml_blocks(path, shown)]
PAGE_BLOCKS = {shown: yaml_blocks(path, shown) for path, shown in PAGES.items()}


@pytest.mark.parametrize("block", BLOCKS, ids=[b.where for b in BLOCKS])
def test_a_yaml_block_of_the_docs_loads_through_featmon(block: Block, tmp_path: Path) -> None:
    """Each yaml block is valid as what its shape says, or is marked not validated (skipped
    with its reason)."""
    reason = block.skip_reason
    if reason is not None:
        pytest.skip(f"{block.where}: not validated: {reason}")
    validate_block(block, PAGE_BLOCKS[block.doc], tmp_path)


def test_the_reference_validates_nearly_all_of_its_examples(tmp_path: Path) -> None:
    """docs/reference.md has an example for every store and kind, and at most one in ten of its
    yaml blocks is left unvalidated."""
    page = PAGE_BLOCKS["docs/reference.md"]
    kinds: dict[str, int] = {}
    for index, block in enumerate(page):
        if block.skip_reason is None:
            what = validate_block(block, page, tmp_path / str(index))
            kinds[what] = kinds.get(what, 0) + 1
    validated = sum(kinds.values())
    assert validated >= 0.9 * len(page), f"{validated} of {len(page)} blocks validated: {kinds}"
    text = REFERENCE.read_text(encoding="utf-8")
    for store_type in ("sql", "parquet", "feast-sqlite", "feast-sql"):
        assert f"type: {store_type}\n" in text, store_type
    for layout in ("feast", "hash"):
        assert f"layout: {layout}\n" in text, layout
    for kind in KINDS:
        assert f"kind: {kind}" in text, f"no example of kind {kind}"


# --- the validator itself can fail --------------------------------------------------------------

STORES_BLOCK = """\
```yaml
stores:
  online: {type: feast-sqlite, path: online.db, project: shop}
checks: checks/*.yaml
```
"""

MISSPELLED = """\
# A page

```yaml
feature_views:
  - name: user_stats
    entity: user_id
    ttl: 1d
    features: {revenue: float}
    online: {store: online}
    checks:
      - {kind: freshness, qantile: p99, max: 1h}
```
"""


def page_of(tmp_path: Path, text: str) -> list[Block]:
    path = tmp_path / "page.md"
    path.write_text(text, encoding="utf-8")
    return yaml_blocks(path)


def test_a_misspelled_key_in_a_doc_example_fails_at_its_line(tmp_path: Path) -> None:
    """`qantile` in a check example is refused, located at the line of the page it is on."""
    page = page_of(tmp_path, MISSPELLED + STORES_BLOCK)
    with pytest.raises(DocExampleError) as caught:
        validate_block(page[0], page, tmp_path / "work")
    message = str(caught.value)
    assert "page.md:11: feature_views[0].checks[0].qantile: unknown key 'qantile'" in message


def test_a_misspelled_store_option_fails_at_its_line(tmp_path: Path) -> None:
    """A config example with `projcet` is refused at its line."""
    page = page_of(tmp_path, STORES_BLOCK.replace("project", "projcet"))
    with pytest.raises(DocExampleError, match=r"page\.md:3: stores\.online\.projcet"):
        validate_block(page[0], page, tmp_path / "work")


def test_a_check_example_naming_an_undeclared_store_fails(tmp_path: Path) -> None:
    """A check file whose store no config block of the page declares is refused."""
    page = page_of(tmp_path, MISSPELLED.replace("qantile", "quantile"))
    with pytest.raises(DocExampleError, match=r"names stores \['online'\] that no config"):
        validate_block(page[0], page, tmp_path / "work")


def test_an_unmarked_block_of_another_shape_fails_and_a_marked_one_is_skipped(
    tmp_path: Path,
) -> None:
    """A fragment that is neither file fails unless marked; the mark carries its reason."""
    fragment = "```yaml\nwatermark: 10m\n```\n"
    marked = "<!-- not validated: one option alone -->\n" + fragment
    page = page_of(tmp_path, fragment + "\n" + marked)
    with pytest.raises(DocExampleError, match=r"neither a config\.yaml nor a check file"):
        validate_block(page[0], page, tmp_path / "work")
    assert (page[0].skip_reason, page[1].skip_reason) == (None, "one option alone")


# --- layout: hash, in a real Redis --------------------------------------------------------------

DOCS_REDIS_DB = 11
"""The Redis database of the documentation's example (other tests use 0 and 13)."""


def labelled(label: str) -> Block:
    """The block of docs/reference.md marked `<!-- docs-example: <label> -->`."""
    found = [
        b for b in blocks(REFERENCE, "docs/reference.md") if b.label == f"docs-example: {label}"
    ]
    assert len(found) == 1, f"expected one block labelled {label!r}, found {len(found)}"
    return found[0]


def hset_commands(block: Block) -> list[tuple[str, dict[str, str]]]:
    """The `redis-cli HSET key field value ...` lines of a block: each key and its fields."""
    commands = []
    for line in block.text.splitlines():
        words = shlex.split(line)
        pairs = words[3:]
        if words[:2] != ["redis-cli", "HSET"] or len(words) < 5 or len(pairs) % 2:
            pytest.fail(
                f"{block.where}: expected redis-cli HSET key field value ..., found {line!r}"
            )
        commands.append((words[2], dict(zip(pairs[::2], pairs[1::2], strict=True))))
    return commands


def subset_mismatches(expected: object, found: object, where: str) -> list[str]:
    """Where `found` differs from `expected` (mappings compared on expected's keys only)."""
    if isinstance(expected, dict):
        if not isinstance(found, dict):
            return [f"{where}: expected a mapping, found {found!r}"]
        return [
            mismatch
            for key, value in expected.items()
            for mismatch in subset_mismatches(value, found.get(key), f"{where}.{key}")
        ]
    return [] if expected == found else [f"{where}: documented {expected!r}, measured {found!r}"]


@pytest.fixture
def docs_redis() -> Iterator[tuple[str, redis.Redis]]:
    """The documentation's Redis database, emptied of the example's keys before and after."""
    url = re.sub(r"/\d*$", f"/{DOCS_REDIS_DB}", REDIS_URL)
    client = admin_client(url)

    def clean() -> None:
        keys = list(client.scan_iter(match="features:user_stats:*", count=1000))
        if keys:
            client.delete(*keys)

    clean()
    try:
        yield url, client
    finally:
        clean()
        client.close()


def test_the_hash_layout_example_measures_what_the_reference_says(
    docs_redis: tuple[str, redis.Redis],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The reference's hashes, written as its redis-cli lines say, checked with its config and
    check file, give its documented results: null, NaN, absent, missing and undecodable each
    counted where the page says."""
    url, client = docs_redis
    for name in ("config.yaml", "checks/user_stats.yaml", "checks/requests.csv"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(labelled(f"hash/{name}").text, encoding="utf-8")
    for key, fields in hset_commands(labelled("hash/redis-cli")):
        write_hash(client, key.encode(), {f.encode(): v.encode() for f, v in fields.items()})
    command = shlex.split(labelled("hash/command").text)
    assert command[:4] == ["featmon", "check", "--config", "config.yaml"]
    monkeypatch.setenv("REDIS_URL", url)
    code = main(["check", "--config", str(tmp_path / "config.yaml"), *command[4:]])
    measured = {r["check"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    documented = json.loads(labelled("hash/outcome").text)
    mismatches = [
        mismatch
        for result in documented
        for mismatch in subset_mismatches(result, measured.get(result["check"]), result["check"])
    ]
    assert mismatches == []
    assert code == 2


@pytest.mark.parametrize(
    ("value_format", "raw", "dtype", "state", "counted_null"),
    [
        ("text", b"", "float", FeatureState.NULL, True),
        ("text", b"", "string", FeatureState.NULL, True),
        ("text", b"nan", "float", FeatureState.VALUE, True),
        ("text", b"n/a", "float", FeatureState.UNDECODABLE, False),
        ("json", b"", "float", FeatureState.NULL, True),
        ("json", b"null", "float", FeatureState.NULL, True),
        ("json", b"NaN", "double", FeatureState.VALUE, True),
        ("json", b'""', "string", FeatureState.VALUE, False),
        ("json", b'"3"', "int64", FeatureState.UNDECODABLE, False),
    ],
)
def test_the_documented_value_states_of_plain_hashes_hold(
    value_format: Literal["text", "json"],
    raw: bytes,
    dtype: str,
    state: FeatureState,
    counted_null: bool,
) -> None:
    """Each row of the reference's null/NaN/empty table reads as the state it gives, and the
    null rate counts it as null exactly when the table says so."""
    reader = ValueReader(value_format, "epoch_s", UTC)
    try:
        reading = FeatureReading(*reader.decode(raw, dtype))
    except (ValueError, TypeError):
        reading = FeatureReading(FeatureState.UNDECODABLE)
    assert (reading.state, reading.is_null) == (state, counted_null)


DOCUMENTED_MODELS = (
    SqlStoreConfig,
    ParquetStoreConfig,
    FeastSqliteStoreConfig,
    FeastSqlStoreConfig,
    RedisStoreConfig,
    FeatureView,
    OnlineSource,
    OfflineSource,
    Partition,
    Schedule,
    RowCountChange,
    ReferenceWindow,
    *typing.get_args(AnyCheck),
    Model,
    ServingLog,
    RequestSample,
    *typing.get_args(AnyModelCheck),
)


@pytest.mark.parametrize("model", DOCUMENTED_MODELS, ids=[m.__name__ for m in DOCUMENTED_MODELS])
def test_every_option_of_the_model_has_a_row_in_the_reference(model: type[BaseModel]) -> None:
    """An option added to a store, a view, a schedule or a check kind must be documented."""
    text = REFERENCE.read_text(encoding="utf-8")
    missing = [name for name in model.model_fields if f"| `{name}` |" not in text]
    assert missing == [], f"docs/reference.md has no table row for {model.__name__} {missing}"
