"""Recorded results back into `CheckResult`s, so that a run's HTML report is rendered on demand
from the state database (the daemon writes no report file per run; the sidecar renders
`/reports/{run_id}` when it is asked for).

The row's columns and its JSON (threshold, details, labels) are the JSON of the `CheckResult`
(`checks.serde`), read back by the same serializer: the details as those of the check's kind
(an `error` result's are `{reason}` only). A kind it does not know, or a row that no longer
reads, raises `DecodeError` with what was expected and what was found.
"""

from __future__ import annotations

from pydantic import ValidationError

from checks.result import CheckResult
from checks.serde import from_json
from monitor.state.values import StoredResult


class DecodeError(ValueError):
    """A recorded result that cannot be read back; the message says where and what."""


def check_result(stored: StoredResult) -> CheckResult:
    """The `CheckResult` that was recorded as `stored`. Raises `DecodeError`."""
    doc = stored.as_json()
    try:
        return from_json(CheckResult, doc)
    except ValidationError as exc:
        raise DecodeError(
            f"result {stored.check} of run {stored.run_id}: expected the details of a "
            f"{stored.kind} check, found {doc['details']!r} ({exc})"
        ) from exc
