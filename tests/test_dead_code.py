"""Nothing in featmon's packages is declared without being used: every function is called by
featmon's own code (not only by the tests) and every class constant is read."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("monitor", "checks", "alerts")
USERS = (*PACKAGES, "bench")  # the load generators are featmon's own callers too

HOOKS = frozenset(
    {
        "filter",  # logging.Filter, called by logging
        "prepare",  # logging.handlers.QueueHandler, called by the handler
        "collect",  # a Prometheus collector, called at scrape time
        "process_bind_param",  # a SQLAlchemy TypeDecorator, called by the engine
        "process_result_value",  # (the same)
    }
)
"""Methods a framework calls by name: no featmon code names them."""

FOR_TESTS = frozenset(
    {
        "fixed_state",  # metrics in a known state, for the exposition tests (metrics.py)
        "alert_documents",  # the stored alert state, read whole by the pipeline tests
    }
)
"""Functions only the tests call, kept beside the code whose state they read."""


def _trees(folders: tuple[str, ...]) -> list[tuple[Path, ast.Module]]:
    paths = sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))
    return [(path, ast.parse(path.read_text(encoding="utf-8"))) for path in paths]


def _names_used(folders: tuple[str, ...]) -> Counter[str]:
    """Every name read, attribute reached or name imported in `folders`."""
    used: Counter[str] = Counter()
    for _, tree in _trees(folders):
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                used[node.id] += 1
            elif isinstance(node, ast.Attribute):
                used[node.attr] += 1
            elif isinstance(node, ast.alias):
                used[node.name.rsplit(".", 1)[-1]] += 1
    return used


def _declared() -> list[tuple[str, ast.AST]]:
    """Every node of the packages, with the place it is declared at."""
    return [
        (f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}", node)
        for path, tree in _trees(PACKAGES)
        for node in ast.walk(tree)
    ]


def test_every_function_is_called_by_featmon_itself() -> None:
    """A function without a decorator that no featmon module (only a test) names is dead."""
    used = _names_used(USERS)
    functions = [
        (place, node)
        for place, node in _declared()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not node.decorator_list
    ]
    skipped = HOOKS | FOR_TESTS
    unused = [
        f"{place} {node.name}"
        for place, node in functions
        if not node.name.startswith("__") and node.name not in skipped and not used[node.name]
    ]
    assert unused == []


def test_every_class_constant_is_read() -> None:
    """A `ClassVar` that no featmon module reads is a promise nothing keeps."""
    used = _names_used(USERS)
    constants = [
        (place, node.target.id)
        for place, node in _declared()
        if isinstance(node, ast.AnnAssign)
        and isinstance(node.target, ast.Name)
        and "ClassVar" in ast.unparse(node.annotation)
    ]
    unread = [f"{place} {name}" for place, name in constants if not used[name]]
    assert unread == []
