"""Composing a YAML node tree within limits, so that a hostile or runaway file is refused while
it is being read, before anything is expanded or built.

A YAML alias is one node shared by every place that names it; expanding it (as `load_yaml`
does, to know the line of every path) copies it into each. Nine levels of nine aliases ("billion
laughs") compose to a few dozen nodes and expand to hundreds of millions. So the composer keeps
the expanded size of every node it finishes and the running total of the document, and stops as
soon as the total passes `Limits.max_nodes`. It also stops at nesting deeper than
`Limits.max_depth` (before Python's recursion limit would), at an int or float of more than
`Limits.max_digits` digits (before Python's int conversion would fail, or take quadratic time),
and at an alias of a node that contains it (which would expand forever).

The events come from libyaml when PyYAML was built with it (about three times faster than the
pure-Python scanner and parser), else from PyYAML's own parser; the composing is PyYAML's,
with the limits kept around each node.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, Event
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from checks.errors import CheckError

_MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """How much featmon reads from one YAML file. The defaults are several times what an
    honest file needs: a check file of 500 feature views, each with ten features and seven
    checks, is about 390 KB and 57,000 nodes, 6 levels deep, and its longest number has 9 digits.
    A larger configuration is split into several check files (`checks` takes a list of globs)."""

    max_bytes: int = _MIB
    max_nodes: int = 100_000
    max_depth: int = 50
    max_digits: int = 32


DEFAULT_LIMITS = Limits()

_Where = tuple[int, int]  # line and column, 1-based
_REREAD_BELOW = 64 * 1024
_NUMBER_TAGS = frozenset({"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"})


class LimitExceeded(CheckError):
    """The document passed one of the `Limits` at `line` and `column` (1-based; 0 unknown),
    under the YAML path `path`."""

    def __init__(self, where: _Where, path: tuple[str | int, ...], message: str) -> None:
        self.line, self.column = where
        self.path = path
        self.message = message
        super().__init__(message)


@dataclass
class _State:
    """What the composer keeps of the document so far: the YAML path and depth of the node
    being composed, the expanded size of every finished node (by id: the nodes live in the tree
    as long as this), and the expanded size of the document so far."""

    path: list[str | int] = field(default_factory=list)
    sizes: dict[int, int] = field(default_factory=dict)
    depth: int = 0
    total: int = 0


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


class LimitedLoader(Composer, SafeConstructor, Resolver):
    """PyYAML's composer with the limits kept around each node (see the module docstring),
    constructing as `yaml.SafeLoader` does; the events come from a parser mixed in below.
    `get_single_node()` raises `LimitExceeded`."""

    # The parser's, mixed in below.
    dispose: Callable[[], None]
    peek_event: Callable[[], Event | None]
    check_event: Callable[..., bool]

    def __init__(self, limits: Limits) -> None:
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self.limits = limits
        self._state = _State()

    def compose_node(self, parent: Node | None, index: object) -> Node | None:
        state = self._state
        event = self.peek_event()
        start = None if event is None else event.start_mark
        mark = (0, 0) if start is None else (start.line + 1, start.column + 1)
        part = index if isinstance(index, int) else getattr(index, "value", None)
        pushed = isinstance(part, str | int)
        if pushed:
            state.path.append(part)  # type: ignore[arg-type]  # str | int, as just checked
        state.depth += 1
        try:
            if state.depth > self.limits.max_depth:
                raise self._exceeded(
                    mark,
                    f"expected YAML nested at most {self.limits.max_depth} levels deep, "
                    "found deeper nesting",
                )
            alias = self.check_event(AliasEvent)
            # PyYAML passes an item's index, a value's key node, or None (its stub says int).
            node = super().compose_node(parent, index)  # type: ignore[arg-type]  # PyYAML passes an index, a key node or None; its stub says int
            self._count(node, alias, mark)
        finally:
            state.depth -= 1
            if pushed:
                state.path.pop()
        return node

    def _count(self, node: Node | None, alias: bool, mark: _Where) -> None:
        state = self._state
        if node is None:
            return
        if alias:
            size = state.sizes.get(id(node))
            if size is None:
                raise self._exceeded(
                    mark,
                    "expected an alias of a finished node, found an alias inside the node it names",
                )
        else:
            size = 1 + sum(state.sizes[id(child)] for child in _children(node))
            state.sizes[id(node)] = size
            if isinstance(node, ScalarNode):
                self._check_number(node, mark)
        state.total += size if alias else 1
        if state.total > self.limits.max_nodes:
            raise self._exceeded(
                mark,
                f"expected at most {self.limits.max_nodes} YAML nodes with aliases expanded, "
                "found more",
            )

    def _check_number(self, node: ScalarNode, mark: _Where) -> None:
        if node.tag not in _NUMBER_TAGS:
            return
        digits = sum(char.isdigit() for char in node.value)
        if digits > self.limits.max_digits:
            raise self._exceeded(
                mark,
                f"expected a number of at most {self.limits.max_digits} digits, "
                f"found one of {digits}",
            )

    def _exceeded(self, mark: _Where, message: str) -> LimitExceeded:
        state = self._state
        return LimitExceeded(mark, tuple(state.path), message)


class _PythonLoader(LimitedLoader, Reader, Scanner, Parser):
    def __init__(self, text: str, limits: Limits) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        LimitedLoader.__init__(self, limits)


_Loader: type[_PythonLoader] = _PythonLoader

if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _LibyamlLoader(LimitedLoader, CParser):
        def __init__(self, text: str, limits: Limits) -> None:
            CParser.__init__(self, text)
            LimitedLoader.__init__(self, limits)

    _Loader = _LibyamlLoader  # type: ignore[assignment]  # the same interface, faster


def compose(text: str, limits: Limits = DEFAULT_LIMITS) -> tuple[LimitedLoader, Node | None]:
    """The node tree of the one document of `text` (None when empty), composed within
    `limits`, and the loader to construct its values with (the caller disposes of it).

    Raises `LimitExceeded`, or PyYAML's `MarkedYAMLError`: when libyaml refuses a text of up to
    64 KiB, PyYAML's parser reads it again to say why in PyYAML's words (a longer one keeps
    libyaml's, so that the slower parser never reads a large file)."""
    loader = _Loader(text, limits)
    try:
        return loader, loader.get_single_node()
    except LimitExceeded:
        loader.dispose()
        raise
    except yaml.MarkedYAMLError as refused:
        loader.dispose()
        if _Loader is _PythonLoader or len(text) > _REREAD_BELOW:
            raise
        again = _PythonLoader(text, limits)
        try:
            again.get_single_node()
        finally:
            again.dispose()
        raise refused from None  # PyYAML's parser took it: libyaml's words, then
