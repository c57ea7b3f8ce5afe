"""YAML text to validated models, with every problem located at file, line and YAML path.

`load_yaml` composes the YAML node tree itself so that it knows the line of every key and item
and can refuse duplicate keys (plain PyYAML silently keeps the last one); it composes within
`Limits` (size, nodes with aliases expanded, depth, digits of a number: see `checks.compose`), so
a hostile file is a located problem before anything is expanded. `interpolate` expands
`${VAR}` and `${VAR:-default}` from an environment that is passed in. `validate` runs a pydantic
model and turns each of its errors into a `Problem` that says what was expected and what was found.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import quote

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from checks.compose import DEFAULT_LIMITS, LimitedLoader, LimitExceeded, Limits, compose
from checks.errors import ConfigError, Problem

Path = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_URL_START = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True)
class Document:
    """A parsed YAML document and the line of every path in it."""

    source: str
    data: object
    lines: Mapping[Path, int] = field(default_factory=dict)

    def line_of(self, path: Path) -> int:
        """The line of the deepest existing prefix of `path` (1-based; 0 if unknown)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return 0

    def problem(self, path: Path, message: str) -> Problem:
        return Problem(self.source, self.line_of(path), dotted(path), message)


def dotted(path: Path) -> str:
    """`("feature_views", 0, "checks")` -> `feature_views[0].checks`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def load_yaml(text: str, source: str, limits: Limits = DEFAULT_LIMITS) -> Document:
    """Parse one YAML document; syntax errors, duplicate keys, values YAML cannot construct
    (`2026-13-45`) and anything past `limits` raise `ConfigError`."""
    if len(text) > limits.max_bytes:  # characters: at most the bytes the reader checked
        found = f"{len(text)} characters"
        raise ConfigError([Problem(source, 0, "", too_large(found, limits))])
    loader: LimitedLoader | None = None
    try:
        loader, node = compose(text, limits)
        if node is None:
            return Document(source, {}, {(): 1})
        lines: dict[Path, int] = {}
        problems: list[Problem] = []
        data = _convert(loader, node, (), lines, problems, source)
    except LimitExceeded as exc:
        raise ConfigError(
            [
                Problem(
                    source, exc.line, dotted(exc.path), f"YAML limit at column {exc.column}: {exc}"
                )
            ]
        ) from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        what = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem and exc.problem.startswith("but "):
            what = f"{exc.context}, {exc.problem}"  # "expected a single document ..., but found"
        raise ConfigError(
            [Problem(source, line, "", f"YAML syntax error at column {column}: {what}")]
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(source, 0, "", f"YAML error: {exc}")]) from exc
    finally:
        if loader is not None:
            loader.dispose()
    if problems:
        raise ConfigError(problems)
    return Document(source, data, lines)


def too_large(found: int | str, limits: Limits) -> str:
    """The message for a file of `found` bytes, past `limits.max_bytes`."""
    size = f"{found} bytes" if isinstance(found, int) else found
    return (
        f"expected a file of at most {limits.max_bytes} bytes, found {size}; "
        "split it (a config's `checks` may name several files)"
    )


def _convert(
    loader: LimitedLoader,
    node: yaml.Node,
    path: Path,
    lines: dict[Path, int],
    problems: list[Problem],
    source: str,
) -> object:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        own = {id(key_node) for key_node, _ in node.value}  # not merged in with `<<: *anchor`
        loader.flatten_mapping(node)
        out: dict[object, object] = {}
        written: set[object] = set()
        for key_node, value_node in node.value:
            key = _construct(loader, key_node, path, problems, source)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str | int) or isinstance(key, bool):
                problems.append(
                    Problem(source, line, dotted(path), f"expected a text key, found {key!r}")
                )
                continue
            if key in written:
                first = lines.get((*path, key), 0)
                problems.append(
                    Problem(
                        source, line, dotted((*path, key)), f"duplicate key (first at line {first})"
                    )
                )
                continue
            if id(key_node) in own:
                written.add(key)
            if key in out:  # a merged-in value overridden, as YAML merge keys intend
                for stale in [p for p in lines if p[: len(path) + 1] == (*path, key)]:
                    del lines[stale]
            lines[(*path, key)] = line
            out[key] = _convert(loader, value_node, (*path, key), lines, problems, source)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _convert(loader, item, (*path, index), lines, problems, source)
            for index, item in enumerate(node.value)
        ]
    return _construct(loader, node, path, problems, source)


def _construct(
    loader: LimitedLoader, node: yaml.Node, path: Path, problems: list[Problem], source: str
) -> object:
    """The value of a scalar (or of a collection used as a key); a value its tag cannot hold
    (`2026-13-45`, `!!int abc`) is a problem, not a crash."""
    try:
        return loader.construct_object(node, deep=True)
    except (ValueError, OverflowError) as exc:
        kind = node.tag.rpartition(":")[2] or "value"
        found = node.value if isinstance(node.value, str) else "a collection"
        problems.append(
            Problem(
                source,
                node.start_mark.line + 1,
                dotted(path),
                f"expected a valid {kind}, found {found!r} ({exc})",
            )
        )
        return None


def interpolate(doc: Document, env: Mapping[str, str]) -> Document:
    """Expand `${VAR}` and `${VAR:-default}` in every string; an unset variable is a problem."""
    problems: list[Problem] = []

    def expand(value: object, path: Path) -> object:
        if isinstance(value, str):

            def one(match: re.Match[str]) -> str:
                name, default = match.group(1), match.group(2)
                found = env.get(name)
                if found is None or (found == "" and default is not None):
                    if default is None:
                        problems.append(
                            doc.problem(
                                path,
                                f"expected environment variable {name} to be set, found it unset",
                            )
                        )
                        return ""
                    return default
                return found

            encoded = _encoded_spans(value)
            return _VAR.sub(
                lambda match: (
                    quote(one(match), safe="") if match.start() in encoded else one(match)
                ),
                value,
            )
        if isinstance(value, dict):
            return {key: expand(item, (*path, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [expand(item, (*path, index)) for index, item in enumerate(value)]
        return value

    data = expand(doc.data, ())
    if problems:
        raise ConfigError(problems)
    return Document(doc.source, data, doc.lines)


def _encoded_spans(template: str) -> frozenset[int]:
    """Where a `${VAR}` inside a URL is percent-encoded when it is expanded: in the user info
    (`scheme://user:${PASSWORD}@host`) and in a query value (`?password=${PASSWORD}`); the
    starts of those placeholders. Elsewhere (a whole URL, a host, a path) a value is put as it is.

    Why encode here rather than build URLs from parts: a store is configured by one URL, the
    form SQLAlchemy, redis-py and httpx all read the same way (each percent-decodes the user
    info and query), and substitution is the one place that still knows which text came from
    the environment. Once expanded, `redis://u:S3#cr/t?x@y@host` is ambiguous to every parser
    (the password is cut at `#`, `/` or `?` and its rest read as a port or a host, which then
    shows in error messages); encoded, any character works, for every store and receiver at once.
    A password written in the file itself is the writer's to encode, as in any URL."""
    if not _URL_START.match(template):
        return frozenset()
    masked = _VAR.sub(lambda match: "x" * len(match.group(0)), template)
    start = masked.index("://") + 3
    end = next((i for i, c in enumerate(masked) if i >= start and c in "/?#"), len(masked))
    userinfo_end = masked.rfind("@", start, end)
    query = masked.find("?", start)
    spans: set[int] = set()
    for match in _VAR.finditer(template):
        at = match.start()
        in_userinfo = start <= at < userinfo_end
        tail = masked[query:at] if 0 <= query < at else ""
        in_query_value = (
            "#" not in tail and tail[max(tail.rfind("="), tail.rfind("&")) :][:1] == "="
        )
        if in_userinfo or in_query_value:
            spans.add(at)
    return frozenset(spans)


def validate(model: type[M], doc: Document, vocabulary: Iterable[str] = ()) -> M:
    """Validate `doc` against `model`; every error becomes a located `Problem`."""
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        errors = [error for error in exc.errors() if not _after_failed_items(error)]
        raise ConfigError(
            _problems(doc, errors, _Vocabulary(model, frozenset(vocabulary)))
        ) from exc


@dataclass(frozen=True)
class _Vocabulary:
    """The keys a "did you mean" hint may suggest for an unknown key: those of the models that
    can stand where it was found (and the caller's extra words), not every key of the file."""

    model: type[BaseModel]
    extra: frozenset[str]

    def at(self, loc: tuple[int | str, ...]) -> list[str]:
        """The keys of the models that `loc` (pydantic's, the unknown key's parent) can be."""
        candidates = [self.model]
        for part in loc:
            fields = [
                info
                for model in candidates
                for name, info in model.model_fields.items()
                if part in (name, info.alias)
            ]
            if fields:  # a field: the models it can hold; else an item, a key or a union tag
                candidates = [sub for info in fields for sub in _models_in(info.annotation)]
        names = {info.alias or name for m in candidates for name, info in m.model_fields.items()}
        return sorted((names or _field_names(self.model)) | self.extra)


def _after_failed_items(error: ErrorDetails) -> bool:
    """Pydantic checks `min_length` of a tuple after dropping the items that failed, so one bad
    view also reports "at least 1 item, found 0"; the items' own problems already say it all."""
    if error["type"] != "too_short":
        return False
    given = error.get("input")
    minimum = (error.get("ctx") or {}).get("min_length")
    return (
        isinstance(given, list | tuple | dict)
        and isinstance(minimum, int)
        and len(given) >= minimum
    )


def _problems(doc: Document, errors: list[ErrorDetails], vocabulary: _Vocabulary) -> list[Problem]:
    """One problem per error, except for the branches of a plain union (`str | tuple[str, ...]`):
    a branch that accepted the value's type (and got further into it) hides the branches that
    refused the type, and branches that all refused the type become one "expected A or B"."""
    located: list[tuple[ErrorDetails, Path, bool]] = []
    for error in errors:
        path, branch = _data_path(doc.data, tuple(error["loc"]), error["type"])
        located.append((error, _at_tag(doc.data, error, path), branch))
    paths = [path for _, path, _ in located]
    out: list[Problem] = []
    branches: dict[Path, list[ErrorDetails]] = {}
    for error, path, branch in located:
        if not branch:
            out.append(doc.problem(path, _message(error, path, vocabulary)))
        elif not any(len(other) > len(path) and other[: len(path)] == path for other in paths):
            branches.setdefault(path, []).append(error)
    for path, refused in branches.items():
        closer = [error for error in refused if not error["type"].endswith("_type")]
        messages = [_message(error, path, vocabulary) for error in closer or refused]
        out.extend(doc.problem(path, message) for message in _either(messages))
    return out


def _at_tag(data: object, error: ErrorDetails, path: Path) -> Path:
    """A wrong `kind` is reported at the line of `kind`, not of the item that holds it."""
    if error["type"] != "union_tag_invalid":
        return path
    node = data
    for part in path:
        node = _child(node, part)
    key = str((error.get("ctx") or {}).get("discriminator", "")).strip("'")
    return (*path, key) if isinstance(node, dict) and key in node else path


def _either(messages: list[str]) -> list[str]:
    """`expected text, found 5` and `expected a list, found 5` -> `expected text or a list, found 5`."""
    split = [message.rpartition(", found ") for message in messages]
    if len(messages) < 2 or any(
        not head.startswith("expected ") or found != split[0][2] for head, _, found in split
    ):
        return messages
    wanted = " or ".join(head.removeprefix("expected ") for head, _, _ in split)
    return [f"expected {wanted}, found {split[0][2]}"]


def _field_names(model: type[BaseModel], seen: set[type[BaseModel]] | None = None) -> set[str]:
    """Every field name reachable from `model`, for "did you mean" hints."""
    seen = seen if seen is not None else set()
    if model in seen:
        return set()
    seen.add(model)
    names: set[str] = set()
    for name, info in model.model_fields.items():
        names.add(info.alias or name)
        for sub in _models_in(info.annotation):
            names |= _field_names(sub, seen)
    return names


def _models_in(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    for arg in getattr(annotation, "__args__", ()) or ():
        out.extend(_models_in(arg))
    for meta in getattr(annotation, "__metadata__", ()) or ():
        out.extend(_models_in(meta))
    origin = getattr(annotation, "__origin__", None)
    if origin is not None and origin is not annotation:
        out.extend(_models_in(origin))
    return out


def _data_path(data: object, loc: tuple[int | str, ...], kind: str) -> tuple[Path, bool]:
    """Drop the union tags pydantic inserts into `loc`, keeping the keys that exist in the data.

    Also says whether the error is about a whole value refused by one branch of a union (its
    `loc` ends in a tag such as `str` or `freshness`)."""
    path: list[str | int] = []
    node = data
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        child = _child(node, part)
        if child is not _NO_CHILD:
            path.append(part)
            node = child
        elif last and kind == "missing" and isinstance(node, dict):
            path.append(part)  # a missing key: name it
        elif last:
            return tuple(path), True
        # anything else is a tag such as `freshness` or `function-after[...]`: skip it
    return tuple(path), False


_NO_CHILD = object()


def _child(node: object, part: int | str) -> object:
    if isinstance(node, dict):
        return node.get(part, _NO_CHILD)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return _NO_CHILD


def _found(value: object) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


_EXPECTED: dict[str, str] = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "text",
    "dict_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "url_parsing": "a URL",
    "url_scheme": "a URL with a supported scheme",
}


def _message(error: ErrorDetails, path: Path, vocabulary: _Vocabulary) -> str:
    kind = error["type"]
    found = _found(error.get("input"))
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return "expected this required key, found it missing"
    if kind == "extra_forbidden":
        key = str(path[-1]) if path else "?"
        known = vocabulary.at(tuple(error["loc"])[:-1])
        hint = difflib.get_close_matches(key, [k for k in known if k != key], n=1)
        return f"unknown key {key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
    if kind == "literal_error":
        return f"expected {ctx.get('expected', 'one of the allowed values')}, found {found}"
    if kind == "union_tag_invalid":
        return f"expected {ctx.get('discriminator', 'kind')} to be one of {ctx.get('expected_tags')}, found {_found(ctx.get('tag'))}"
    if kind == "union_tag_not_found":
        return f"expected a {ctx.get('discriminator', 'kind')!s} key, found none"
    if kind in {"greater_than_equal", "greater_than", "less_than_equal", "less_than"}:
        words = {
            "greater_than_equal": ("at least", "ge"),
            "greater_than": ("more than", "gt"),
            "less_than_equal": ("at most", "le"),
            "less_than": ("less than", "lt"),
        }[kind]
        return f"expected a number {words[0]} {ctx.get(words[1])}, found {found}"
    if kind == "too_short":
        return (
            f"expected at least {ctx.get('min_length')} item(s), found {ctx.get('actual_length')}"
        )
    if kind == "value_error":
        reason = str(ctx.get("error", error["msg"]))
        return reason if reason.startswith("expected") else f"expected {reason}, found {found}"
    if kind == "string_pattern_mismatch":
        return f"expected text matching {ctx.get('pattern')}, found {found}"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, found {found}"
    wanted = error["msg"].removeprefix("Input should be ").removeprefix("Value should be ")
    return f"expected {wanted[:1].lower()}{wanted[1:]}, found {found}"
