"""The silences of the JSON API, kept in the state database:

    GET    /api/v1/silences         active and pending silences; `?all=1` adds those that ended
                                    in the last day
    POST   /api/v1/silences         create one: a JSON object with `matchers` (as in config.yaml),
                                    `starts_at` (default now) and `ends_at` (RFC 3339 with an
                                    offset), `created_by` and `comment`; 201 with the silence
    DELETE /api/v1/silences/{id}    expire it now; 404 for an unknown id

A posted silence is validated by `alerts.silences.Silence`, the model of config.yaml's
silences, and parsing it is pure (`parse_silence`): every mistake is a 400 naming the field.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from alerts.silences import Silence
from checks.result import JSON
from monitor.http.api import BadRequest, error, parse_time, read_state, unavailable
from monitor.metrics import StateSource
from monitor.state import StateStore, StoredSilence

T = TypeVar("T")

MAX_BODY = 64 * 1024  # bytes: a silence is a few hundred
ENDED_WITHIN = timedelta(days=1)  # what `?all=1` adds: silences that ended this recently
FIELDS = ("matchers", "starts_at", "ends_at", "created_by", "comment")
_FLAGS = {"1": True, "true": True, "0": False, "false": False}

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def parse_silence(body: object, silence_id: str, now: datetime) -> Silence:
    """A posted JSON value as a silence with the id `silence_id`; `starts_at` defaults to
    `now`, and `ends_at` must be after `now` (a silence that is over is a mistake)."""
    if not isinstance(body, dict):
        raise BadRequest("body", f"expected a JSON object, found {_json_type(body)}")
    for name in body:
        if name not in FIELDS:
            raise BadRequest(name, f"unknown field; expected one of {', '.join(FIELDS)}")
    if "ends_at" not in body:
        raise BadRequest("ends_at", "expected the time the silence ends, found none")
    starts_at = _time(body, "starts_at") if "starts_at" in body else now
    ends_at = _time(body, "ends_at")
    if ends_at <= starts_at:
        raise BadRequest(
            "ends_at",
            f"expected a time after starts_at ({starts_at.isoformat()}), "
            f"found {ends_at.isoformat()}",
        )
    if ends_at <= now:
        raise BadRequest("ends_at", f"expected a time in the future, found {ends_at.isoformat()}")
    fields = {**body, "id": silence_id, "starts_at": starts_at, "ends_at": ends_at}
    try:
        return Silence.model_validate(fields)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "body"
        message = str(problem["msg"]).removeprefix("Value error, ")
        raise BadRequest(where, message) from None


def _time(body: dict[str, object], name: str) -> datetime:
    value = body[name]
    if not isinstance(value, str):
        raise BadRequest(
            name,
            "expected an RFC 3339 time with an offset such as 2026-11-26T06:00:00Z, "
            f"found {_json_type(value)}",
        )
    return parse_time(name, value)


def parse_all(request: Request) -> bool:
    """The `all` flag of the listing; any other parameter is an error."""
    params = request.query_params
    for name in params:
        if name != "all":
            raise BadRequest(name, "unknown parameter; expected all")
    if "all" not in params:
        return False
    text = params["all"]
    if len(params.getlist("all")) > 1 or text.lower() not in _FLAGS:
        raise BadRequest("all", f"expected one of 1, true, 0, false, found {text!r}")
    return _FLAGS[text.lower()]


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")


class SilenceApi:
    """The silence endpoints over the state database of the moment. `clock` gives now."""

    def __init__(self, source: StateSource, clock: Clock = _utcnow) -> None:
        self._source = source
        self._clock = clock

    def _state(self, read: Callable[[StateStore], T], what: str) -> tuple[T] | None:
        """`(read(state),)`, or None when there is no state database or it failed."""
        return read_state(self._source, lambda state: (read(state),), what)

    def list(self, request: Request) -> JSONResponse:
        try:
            with_ended = parse_all(request)
        except BadRequest as exc:
            return error(400, "bad request", str(exc))
        now = self._clock()
        since = now - ENDED_WITHIN if with_ended else None
        found = self._state(lambda s: s.silences(now, since), f"GET {request.url.path}")
        if found is None:
            return unavailable()
        listed: list[JSON] = [s.as_json(now) for s in found[0]]
        return JSONResponse({"count": len(listed), "silences": listed})

    async def create(self, request: Request) -> JSONResponse:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return error(413, "too large", f"expected at most {MAX_BODY} bytes, found {len(raw)}")
        now = self._clock()
        try:
            body = _json_body(raw)
            silence = parse_silence(body, uuid.uuid4().hex, now)
        except BadRequest as exc:
            return error(400, "bad request", str(exc))
        document = silence.model_dump(mode="json")
        window = (silence.starts_at, silence.ends_at)

        def add(state: StateStore) -> StoredSilence:
            return state.add_silence(silence.id, document, window, now)

        added = await run_in_threadpool(self._state, add, f"POST {request.url.path}")
        if added is None:
            return unavailable()
        location = f"{request.url.path.rstrip('/')}/{silence.id}"
        return JSONResponse(added[0].as_json(now), status_code=201, headers={"Location": location})

    def expire(self, request: Request) -> JSONResponse:
        silence_id = str(request.path_params["silence_id"])
        now = self._clock()
        found = self._state(
            lambda s: s.expire_silence(silence_id, now), f"DELETE {request.url.path}"
        )
        if found is None:
            return unavailable()
        if found[0] is None:
            return error(404, "not found", f"no silence has the id {silence_id!r}")
        return JSONResponse(found[0].as_json(now))


def _json_body(raw: bytes) -> object:
    try:
        found: object = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(
            "body", f"expected a JSON object, found text that is not JSON ({exc})"
        ) from None
    return found
