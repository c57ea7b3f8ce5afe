"""The outline of a Soda Core v4 contract: which checks it holds and how each is identified.

Pure (YAML text in, values out). featmon plans one result per Soda check, so the planner reads
the contract's outline before anything runs: a check is one single-key item of the dataset's
`checks:` list or of a column's `checks:` list, and its identity is Soda's own relative path,

    checks.<type>[.<qualifier>]                       a dataset-level check
    columns.<column>.checks.<type>[.<qualifier>]      a column check

which Soda reports back with every check result (`Check.relative_path`), so results are matched
to planned checks by it. featmon's key is that path without the `columns.` / `.checks` words:
`row_count`, `revenue.missing`, `revenue.invalid.range`; the result id is
`<view>.soda.<key>@offline` (or `<name>.<key>` for a named check).

The contract's `dataset:` is featmon's to set (the view's offline table on the view's store); a
contract may leave it out, or name the same table.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from checks.errors import ConfigError
from checks.model import FeatureView, SodaCheck
from checks.source import Path, load_yaml


@dataclass(frozen=True)
class SodaCheckRef:
    """One check of a contract, as the outline sees it."""

    relative_path: str  # Soda's identity of the check within the contract
    type: str  # missing, invalid, row_count, schema, aggregate, ...
    column: str | None
    qualifier: str | None
    name: str | None  # the check's own `name`, if the contract gives one
    line: int  # 1-based line in the contract text

    @property
    def key(self) -> str:
        """The featmon key: `row_count`, `revenue.missing`, `revenue.invalid.range`."""
        parts = [self.column, self.type, self.qualifier]
        return ".".join(part for part in parts if part is not None)


@dataclass(frozen=True)
class ContractOutline:
    checks: tuple[SodaCheckRef, ...]
    dataset: str | None  # the contract's `dataset:` as written, if any
    problems: tuple[tuple[Path, int, str], ...]  # (path in the contract, line, message)


_QUALIFIER = re.compile(r"^[A-Za-z0-9_-]+$")


def outline(text: str, source: str = "<contract>") -> ContractOutline:
    """The checks of a contract, in order, and what is wrong with its shape (each problem with
    its path and line in the contract). Soda itself validates the rest when it runs."""
    try:
        doc = load_yaml(text, source)
    except ConfigError as exc:
        return ContractOutline((), None, tuple(((), p.line, p.message) for p in exc.problems))
    data = doc.data
    if not isinstance(data, dict):
        found = type(data).__name__
        return ContractOutline((), None, (((), 1, f"expected a mapping, found {found}"),))
    refs: list[SodaCheckRef] = []
    problems: list[tuple[Path, int, str]] = []

    def add(items: object, where: Path, column: str | None) -> None:
        if items is None:
            return
        if not isinstance(items, list):
            problems.append((where, doc.line_of(where), "expected a list of checks"))
            return
        for index, item in enumerate(items):
            path = (*where, index)
            ref = _ref(item, column, doc.line_of(path))
            if isinstance(ref, str):
                problems.append((path, doc.line_of(path), ref))
            else:
                refs.append(ref)

    add(data.get("checks"), ("checks",), None)
    columns = data.get("columns")
    if columns is not None and not isinstance(columns, list):
        problems.append((("columns",), doc.line_of(("columns",)), "expected a list of columns"))
        columns = []
    for index, column in enumerate(columns or []):
        where: Path = ("columns", index)
        name = column.get("name") if isinstance(column, dict) else None
        if not isinstance(name, str) or not name:
            problems.append((where, doc.line_of(where), "expected a column with a `name`"))
            continue
        add(column.get("checks"), (*where, "checks"), name)
    if "columns" not in data:
        problems.append(((), 1, "expected `columns:` (Soda needs the table's columns), found none"))
    if not refs and not problems:
        problems.append(((), 1, "expected at least one check, found none"))
    seen: dict[str, int] = {}
    for ref in refs:
        if ref.relative_path in seen:
            problems.append(
                (
                    (),
                    ref.line,
                    f"expected a unique check, found {ref.relative_path!r} again (first at line "
                    f"{seen[ref.relative_path]}); give one a `qualifier`",
                )
            )
        seen.setdefault(ref.relative_path, ref.line)
    dataset = data.get("dataset")
    return ContractOutline(
        tuple(refs), dataset if isinstance(dataset, str) else None, tuple(problems)
    )


def _ref(item: object, column: str | None, line: int) -> SodaCheckRef | str:
    """One `checks:` item as a reference, or what is wrong with it."""
    if isinstance(item, str):
        return f"expected `{item}:` (a check is a mapping of its type), found `{item}`"
    if not isinstance(item, dict) or len(item) != 1:
        return "expected one key, the check's type (such as `missing:`), per check"
    ((kind, body),) = item.items()
    if body is not None and not isinstance(body, dict):
        return f"expected the settings of `{kind}` as a mapping, found {body!r}"
    body = body or {}
    qualifier = body.get("qualifier")
    if qualifier is not None:
        qualifier = str(qualifier)
        if not _QUALIFIER.match(qualifier):
            return f"expected a qualifier of letters, digits, _ or -, found {qualifier!r}"
    name = body.get("name")
    tail = f".{qualifier}" if qualifier is not None else ""
    base = f"columns.{column}.checks" if column is not None else "checks"
    return SodaCheckRef(
        relative_path=f"{base}.{kind}{tail}",
        type=str(kind),
        column=column,
        qualifier=qualifier,
        name=name if isinstance(name, str) else None,
        line=line,
    )


def table_name(dataset: str) -> str:
    """The last part of a Soda dataset name (`ds/db/schema/table` -> `table`)."""
    return dataset.rstrip("/").rpartition("/")[2]


_DATASET_LINE = re.compile(r"^dataset[ \t]*:.*$", re.MULTILINE)


def with_dataset(text: str, dataset: str) -> str:
    """The contract with its top-level `dataset:` set to `dataset`, every other line where it
    was (so Soda's line numbers still point into the user's text)."""
    line = f"dataset: {json.dumps(dataset)}"  # a JSON string is a YAML scalar
    if _DATASET_LINE.search(text):
        return _DATASET_LINE.sub(line, text, count=1)
    return f"{text.rstrip()}\n{line}\n"


def keys_of(check: SodaCheck) -> list[str]:
    """The featmon keys of the checks of a Soda check's contract, in order; none while the
    contract is not known yet (a `contract_file` the loader has not read) or does not parse."""
    if check.contract is None:
        return []
    found = outline(check.contract)
    return [] if found.problems else [ref.key for ref in found.checks]


def problems(view: FeatureView, check: SodaCheck, path: Path) -> list[tuple[Path, str]]:
    """What is wrong with the contract's shape, or with the dataset it names, each located at
    the check's `contract` (or `contract_file`) with the line inside the contract."""
    if check.contract is None:
        return []
    where: Path = (*path, "contract" if check.contract_file is None else "contract_file")
    origin = check.contract_file or "contract"
    found = outline(check.contract, origin)
    out = [(where, f"{origin} line {line}: {message}") for _, line, message in found.problems]
    table = view.offline.table if view.offline is not None else None
    named = table_name(found.dataset) if found.dataset is not None else None
    if named is not None and table is not None and named != table.rpartition(".")[2]:
        out.append(
            (
                where,
                f"expected the contract's dataset to be the view's offline table {table!r} "
                f"(or no `dataset:`), found {found.dataset!r}",
            )
        )
    return out
