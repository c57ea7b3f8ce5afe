"""The exceptions of the checks package.

CheckError
 ├── ConfigError      one or more located problems in a YAML file
 ├── LimitExceeded    a YAML file past an input limit (checks.compose; load_yaml makes it a
 │                    ConfigError)
 └── UnknownKind      a check kind no module of checks.kinds declares
"""

from __future__ import annotations

from dataclasses import dataclass


class CheckError(Exception):
    """Base of every error raised by the checks package."""


@dataclass(frozen=True, order=True)
class Problem:
    """One mistake in one file, located at a line and a YAML path."""

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(CheckError):
    """Every problem found in one or more files, reported together."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems = tuple(sorted(problems))
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the configuration"
        super().__init__("\n".join([head, *(f"  {p}" for p in self.problems)]))


class UnknownKind(CheckError):
    """A check kind that no module of `checks.kinds` declares."""

    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        self.name = name
        self.known = known
        super().__init__(f"expected a check kind, one of {', '.join(known)}; found {name!r}")
