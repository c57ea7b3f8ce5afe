"""What of a check file is valid, after its schema problems: so that one pass of `validate`
reports every problem of every file.

A check file that the schema refuses would otherwise hide its cross-field problems (a store
that does not exist, an undeclared feature, a duplicate view name) until its first batch of
problems is fixed. `salvage` keeps the views and checks that are valid on their own, as a
document whose paths and lines are still those of the file, for the cross-field rules to run on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import ValidationError

from checks.checkfile import CheckFile
from checks.errors import Problem
from checks.model import FeatureView
from checks.source import Document, Path


@dataclass(frozen=True)
class Salvaged(Document):
    """The valid part of a check file. Its own paths count the views and checks it kept;
    `line_of` and `problem` speak of the same places in the file as it was written."""

    views: tuple[int, ...] = ()  # kept view -> its index in the file
    checks: Mapping[int, tuple[int, ...]] = field(default_factory=dict)  # kept view -> indices
    original: Document = field(default_factory=lambda: Document("", None))  # the file as written

    def written(self, path: Path) -> Path:
        """`path` in the file as written."""
        if len(path) < 2 or path[0] != "feature_views" or not isinstance(path[1], int):
            return path
        kept = path[1]
        out: list[str | int] = ["feature_views", self.views[kept], *path[2:]]
        if len(path) >= 4 and path[2] == "checks" and isinstance(path[3], int):
            out[3] = self.checks[kept][path[3]]
        return tuple(out)

    def line_of(self, path: Path) -> int:
        return self.original.line_of(self.written(path))

    def problem(self, path: Path, message: str) -> Problem:
        return self.original.problem(self.written(path), message)


def salvage(doc: Document) -> tuple[Salvaged, CheckFile] | None:
    """The views of `doc` that are valid with the checks that are valid in them, or None when
    nothing of the file is (its top level is not a mapping of feature views, say)."""
    data = doc.data
    if not isinstance(data, dict) or not isinstance(data.get("feature_views"), list):
        return None
    kept: list[object] = []
    views: list[int] = []
    checks: dict[int, tuple[int, ...]] = {}
    for v_index, view in enumerate(data["feature_views"]):
        if not isinstance(view, dict):
            continue
        written = view.get("checks")
        written = written if isinstance(written, list) else []
        good = _valid_checks(view, written)
        candidate = {**view, "checks": [written[i] for i in good]} if good else _without(view)
        if not _valid(FeatureView, candidate):
            continue
        checks[len(kept)] = tuple(good)
        views.append(v_index)
        kept.append(candidate)
    pruned = {**data, "feature_views": kept}
    try:
        check_file = CheckFile.model_validate(pruned)
    except ValidationError:
        return None
    return Salvaged(doc.source, pruned, {}, tuple(views), checks, doc), check_file


def _valid_checks(view: Mapping[str, object], written: list[object]) -> list[int]:
    """The checks of `view` that are valid in it, each tried alone."""
    return [
        i for i, check in enumerate(written) if _valid(FeatureView, {**view, "checks": [check]})
    ]


def _without(view: Mapping[str, object]) -> dict[str, object]:
    return {key: value for key, value in view.items() if key != "checks"}


def _valid(model: type[FeatureView], data: object) -> bool:
    try:
        model.model_validate(data)
    except ValidationError:
        return False
    return True
