"""The JSON API: `/api/v1/status` (per feature view and per model: last run, worst status),
`/api/v1/results` (history, filtered) and `/api/v1/runs` (recorded runs, each with the view or
model it ran). Parsing a query is pure (`parse_results_query`) and every mistake is a 400 that
says which parameter, what was expected and what was found."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse

from checks.result import JSON, Status, rfc3339, worst
from monitor.metrics import StateSource
from monitor.state import StateError, StateStore, StoredResult
from monitor.state.store import MAX_LIMIT
from monitor.state.values import OutboxRow, OutboxState

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_LIMIT = 100
RESULTS_PARAMS = ("view", "model", "check", "since", "until", "status", "limit", "run_id")
RUNS_PARAMS = ("since", "limit")
DEFAULT_RUNS = 50
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})"
)


class BadRequest(ValueError):
    """A query parameter the API cannot use; the message is the response's `detail`."""

    def __init__(self, parameter: str, detail: str) -> None:
        self.parameter = parameter
        super().__init__(f"{parameter}: {detail}")


@dataclass(frozen=True)
class ResultsQuery:
    view: str | None = None
    check: str | None = None
    model: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    status: Status | None = None
    limit: int = DEFAULT_LIMIT
    run_id: str | None = None


def parse_time(name: str, text: str) -> datetime:
    """An RFC 3339 time with its offset (`2026-11-26T06:00:00Z`, `...+02:00`)."""
    if not _RFC3339.fullmatch(text):
        raise BadRequest(
            name,
            f"expected an RFC 3339 time with an offset such as 2026-11-26T06:00:00Z, "
            f"found {text!r}",
        )
    normal = text[:-1] + "+00:00" if text[-1] in "Zz" else text
    try:
        return datetime.fromisoformat(normal.replace("t", "T", 1))
    except ValueError as exc:
        raise BadRequest(name, f"expected a valid date and time, found {text!r}") from exc


def parse_limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise BadRequest("limit", f"expected a whole number from 1 to {MAX_LIMIT}, found {text!r}")
    return int(text)


def parse_status(text: str) -> Status:
    try:
        return Status(text)
    except ValueError:
        names = ", ".join(s.value for s in Status)
        raise BadRequest("status", f"expected one of {names}, found {text!r}") from None


def _known(params: QueryParams, known: tuple[str, ...]) -> dict[str, str]:
    """Each parameter by name; unknown or repeated parameters are errors."""
    for name in params:
        if name not in known:
            raise BadRequest(name, f"unknown parameter; expected one of {', '.join(known)}")
        if len(params.getlist(name)) > 1:
            raise BadRequest(name, "expected the parameter once, found it repeated")
    return {name: params[name] for name in params}


def parse_results_query(params: QueryParams) -> ResultsQuery:
    """The filters of `/api/v1/results`. Unknown or repeated parameters are errors."""
    text = _known(params, RESULTS_PARAMS)
    for name in ("view", "model", "check", "run_id"):
        if name in text and not text[name]:
            raise BadRequest(name, "expected a name, found an empty value")
    query = ResultsQuery(
        view=text.get("view"),
        model=text.get("model"),
        check=text.get("check"),
        since=parse_time("since", text["since"]) if "since" in text else None,
        until=parse_time("until", text["until"]) if "until" in text else None,
        status=parse_status(text["status"]) if "status" in text else None,
        limit=parse_limit(text["limit"]) if "limit" in text else DEFAULT_LIMIT,
        run_id=text.get("run_id"),
    )
    if query.since is not None and query.until is not None and query.since >= query.until:
        raise BadRequest(
            "until", f"expected a time after since ({text['since']}), found {text['until']}"
        )
    return query


def parse_runs_query(params: QueryParams) -> tuple[datetime | None, int]:
    """`since` and `limit` of `/api/v1/runs`."""
    text = _known(params, RUNS_PARAMS)
    since = parse_time("since", text["since"]) if "since" in text else None
    return since, parse_limit(text["limit"]) if "limit" in text else DEFAULT_RUNS


def status_by(
    latest: Iterable[StoredResult], field: str, name: Callable[[StoredResult], str | None]
) -> list[dict[str, JSON]]:
    """Per subject `name` gives (a feature view, or a model; results it names None are
    another's), from each check's latest result: the worst status, the newest run and the
    results by status, under `field`. Sorted by name."""
    grouped: dict[str, list[StoredResult]] = {}
    for result in latest:
        key = name(result)
        if key is not None:
            grouped.setdefault(key, []).append(result)
    return [{field: key, **_summary(grouped[key])} for key in sorted(grouped)]


def _summary(members: list[StoredResult]) -> dict[str, JSON]:
    newest = max(members, key=lambda r: (r.scheduled_at, r.run_id))
    counts = {s.value: 0 for s in Status}
    for result in members:
        counts[result.status.value] += 1
    by_status: dict[str, JSON] = dict(counts)
    return {
        "status": worst([r.status for r in members]).value,
        "last_run": {"run_id": newest.run_id, "scheduled_at": rfc3339(newest.scheduled_at)},
        "checks": len(members),
        "counts": by_status,
    }


def error(status_code: int, message: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": message, "detail": detail}, status_code=status_code)


def unavailable() -> JSONResponse:
    """The state database is not there or failed (its URL and the cause are in the log)."""
    return error(503, "unavailable", "the state database is unavailable")


def read_state(source: StateSource, read: Callable[[StateStore], T], what: str) -> T | None:
    """`read(state)` on the state database of the moment, or None (logged) when there is none
    or it failed: the caller answers 503."""
    try:
        with source() as state:
            return None if state is None else read(state)
    except StateError as exc:
        log.error("%s: %s", what, exc)
    except RuntimeError as exc:  # the daemon has no configuration yet, or no longer
        log.warning("%s: %s", what, exc)
    return None


class Api:
    """The JSON endpoints over the state database of the moment."""

    def __init__(self, source: StateSource) -> None:
        self._source = source

    def status(self, request: Request) -> JSONResponse:
        latest = read_state(self._source, StateStore.latest_by_check, f"GET {request.url.path}")
        if latest is None:
            return unavailable()
        views = status_by(latest, "feature_view", lambda r: r.feature_view)
        models = status_by(latest, "model", lambda r: r.model)
        statuses = [Status(str(s["status"])) for s in (*views, *models)]
        overall = worst(statuses).value if statuses else None
        return JSONResponse({"status": overall, "feature_views": views, "models": models})

    def results(self, request: Request) -> JSONResponse:
        try:
            query = parse_results_query(request.query_params)
        except BadRequest as exc:
            return error(400, "bad request", str(exc))
        found = read_state(
            self._source,
            lambda state: state.results(
                view=query.view,
                check=query.check,
                since=query.since,
                until=query.until,
                status=query.status,
                limit=query.limit,
                run_id=query.run_id,
                model=query.model,
            ),
            f"GET {request.url.path}",
        )
        if found is None:
            return unavailable()
        return JSONResponse({"count": len(found), "results": [r.as_json() for r in found]})

    def runs(self, request: Request) -> JSONResponse:
        """Recorded runs, newest first: a view's run names its `feature_view`, a model's its
        `model` (and `feature_view` null), a run of several (`featmon check`) neither."""
        try:
            since, limit = parse_runs_query(request.query_params)
        except BadRequest as exc:
            return error(400, "bad request", str(exc))
        found = read_state(
            self._source,
            lambda state: state.runs(limit=limit, since=since),
            f"GET {request.url.path}",
        )
        if found is None:
            return unavailable()
        return JSONResponse({"count": len(found), "runs": [r.as_json() for r in found]})


def outbox_json(row: OutboxRow) -> dict[str, JSON]:
    """One notification's delivery as the API shows it: never the claim token (the
    notification itself holds labels and annotations only, no receiver secret)."""
    alerts = row.notification.get("alerts")
    listed = alerts if isinstance(alerts, tuple | list) else ()
    firing = any(isinstance(a, Mapping) and a.get("state") == "firing" for a in listed)
    return {
        "id": row.id,
        "receiver": row.receiver,
        "group_key": row.group_key,
        "dedup_key": row.dedup_key,
        "status": "firing" if firing else "resolved",
        "alerts": len(listed),
        "state": row.state.value,
        "attempts": row.attempts,
        "created_at": rfc3339(row.created_at),
        "next_attempt_at": rfc3339(row.next_attempt_at),
        "delivered_at": rfc3339(row.delivered_at) if row.delivered_at else None,
        "last_error": row.last_error,
    }


_NOTIFICATION_PARAMETERS = frozenset({"state", "receiver", "limit"})


def notifications(source: StateSource, request: Request) -> JSONResponse:
    """`GET /api/v1/notifications?state=pending|delivered|dead&receiver=&limit=`: the outbox,
    newest last, so a dead notification and its reason can be seen."""
    params = request.query_params
    unknown = sorted(set(params) - _NOTIFICATION_PARAMETERS)
    if unknown:
        return error(400, "bad request", f"{unknown[0]}: expected one of state, receiver, limit")
    state: OutboxState | None = None
    try:
        if "state" in params:
            state = OutboxState(params["state"])
        limit = parse_limit(params["limit"]) if "limit" in params else 100
    except ValueError as exc:
        detail = str(exc)
        if "state" in params and state is None:
            detail = f"state: expected pending, delivered or dead, found {params['state']!r}"
        return error(400, "bad request", detail)
    rows = read_state(
        source,
        lambda store: store.outbox_rows(state, limit, params.get("receiver")),
        f"GET {request.url.path}",
    )
    if rows is None:
        return unavailable()
    return JSONResponse({"count": len(rows), "notifications": [outbox_json(r) for r in rows]})
