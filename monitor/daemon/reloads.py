"""What the last configuration reload of the daemon came to, as `/readyz` shows it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from checks.result import rfc3339


@dataclass(frozen=True)
class ReloadOutcome:
    """One reload: when it ended, and on failure why (`error`, and every located problem of the
    configuration, `file:line: path: message`). The last good configuration keeps running."""

    ok: bool
    at: datetime
    error: str | None = None
    problems: tuple[str, ...] = ()

    @classmethod
    def failed(cls, at: datetime, message: str, problems: Iterable[object]) -> ReloadOutcome:
        """A failed reload: `message`'s first line, and each problem as the log writes it."""
        return cls(False, at, message.splitlines()[0], tuple(str(p) for p in problems))

    def as_json(self) -> dict[str, object]:
        body: dict[str, object] = {"status": "ok" if self.ok else "failed", "at": rfc3339(self.at)}
        if not self.ok:
            body["error"] = self.error
            body["problems"] = list(self.problems)
        return body
