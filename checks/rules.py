"""Rules the check-file models share (pure, no I/O)."""

from __future__ import annotations

from pydantic import BaseModel


def exactly_one(
    model: BaseModel, first: str, second: str, notes: tuple[str, str] = ("", "")
) -> None:
    """Raise `ValueError` unless exactly one of the fields `first` and `second` of `model` is
    set: "expected exactly one of `table` (sql) or `path` (parquet), found both" (`notes`
    follow each name)."""
    unset = getattr(model, first) is None
    if unset == (getattr(model, second) is None):
        found = "neither" if unset else "both"
        raise ValueError(
            f"expected exactly one of `{first}`{notes[0]} or `{second}`{notes[1]}, found {found}"
        )
