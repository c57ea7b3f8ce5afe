"""Silences through the JSON API, against the real sidecar on a free loopback port over a
migrated SQLite state database: create, list, expire, the 400s naming the field, the token, and
an API silence muting the alert pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from monitor.state import StateStore
from tests.alert_fixtures import alert_now
from tests.sidecar import serve

TOKEN = "silence-token"
HOUR = timedelta(hours=1)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def a_silence(**overrides: object) -> dict[str, object]:
    now = datetime.now(UTC)
    body: dict[str, object] = {
        "matchers": ['feature_view="user_stats"', 'severity=~"P[12]"'],
        "starts_at": rfc3339(now - timedelta(minutes=1)),
        "ends_at": rfc3339(now + HOUR),
        "created_by": "oncall@example.com",
        "comment": "INC-42 backfill",
    }
    body.update(overrides)
    return body


@pytest.fixture
def base(state: StateStore) -> Iterator[str]:
    with serve(state, token=TOKEN) as url:
        yield url


@pytest.fixture
def client(base: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as http:
        yield http


JSON_TYPE = {"Content-Type": "application/json"}


def expire(client: httpx.Client, path: str) -> httpx.Response:
    """DELETE, which like every state-changing call declares JSON."""
    return client.request("DELETE", path, headers=JSON_TYPE)


def create(client: httpx.Client, **overrides: object) -> dict[str, object]:
    response = client.post("/api/v1/silences", json=a_silence(**overrides))
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def listed(client: httpx.Client, **params: str) -> list[dict[str, object]]:
    response = client.get("/api/v1/silences", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == len(body["silences"])
    found: list[dict[str, object]] = body["silences"]
    return found


# -- create, list, expire -------------------------------------------------------------------------


def test_a_created_silence_is_201_with_its_id_and_is_listed_active(client: httpx.Client) -> None:
    created = create(client)
    assert isinstance(created["id"], str)
    assert len(created["id"]) == 32
    assert created["status"] == "active"
    assert created["matchers"] == [
        {"name": "feature_view", "op": "=", "value": "user_stats"},
        {"name": "severity", "op": "=~", "value": "P[12]"},
    ]
    assert (created["created_by"], created["comment"]) == ("oncall@example.com", "INC-42 backfill")
    assert [s["id"] for s in listed(client)] == [created["id"]]


def test_a_silence_without_starts_at_starts_now(client: httpx.Client) -> None:
    body = a_silence()
    del body["starts_at"]
    response = client.post("/api/v1/silences", json=body)
    assert response.status_code == 201, response.text
    starts = datetime.fromisoformat(response.json()["starts_at"])
    assert abs(starts - datetime.now(UTC)) < timedelta(minutes=1)


def test_a_future_silence_is_listed_pending(client: httpx.Client) -> None:
    later = datetime.now(UTC) + HOUR
    created = create(client, starts_at=rfc3339(later), ends_at=rfc3339(later + HOUR))
    assert [(s["id"], s["status"]) for s in listed(client)] == [(created["id"], "pending")]


def test_an_expired_silence_leaves_the_list_but_stays_in_all(client: httpx.Client) -> None:
    created = create(client)
    response = expire(client, f"/api/v1/silences/{created['id']}")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "expired"
    assert response.json()["expired_at"] is not None
    assert listed(client) == []
    assert [(s["id"], s["status"]) for s in listed(client, all="1")] == [(created["id"], "expired")]


def test_expiring_twice_keeps_the_first_expiry(client: httpx.Client) -> None:
    created = create(client)
    first = expire(client, f"/api/v1/silences/{created['id']}").json()
    second = expire(client, f"/api/v1/silences/{created['id']}")
    assert second.status_code == 200
    assert second.json()["expired_at"] == first["expired_at"]


def test_expiring_an_unknown_silence_is_404(client: httpx.Client) -> None:
    response = expire(client, "/api/v1/silences/no-such-silence")
    assert response.status_code == 404
    assert "no-such-silence" in response.json()["detail"]


def test_a_silence_that_ended_more_than_a_day_ago_is_not_in_all(
    client: httpx.Client, state: StateStore
) -> None:
    """Stored directly: the API refuses a silence that is already over."""
    old = datetime.now(UTC) - timedelta(days=3)
    state.add_silence("old", {"id": "old", "comment": "stored"}, (old, old + HOUR), old)
    assert listed(client, all="true") == []


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "says"),
    [
        ({"matchers": ['team~"ml"']}, "matchers.0", "expected a matcher"),
        ({"matchers": ['team=~"("']}, "matchers.0", "expected a regular expression"),
        ({"matchers": ['team!="ml"']}, "matchers", "needs a non-empty label"),
        ({"matchers": []}, "matchers", "at least 1"),
        ({"starts_at": "2026-11-26T06:00:00"}, "starts_at", "RFC 3339 time with an offset"),
        ({"ends_at": 1_800_000_000}, "ends_at", "found a number"),
        ({"ends_at": "2020-01-01T00:00:00Z"}, "ends_at", "expected a time after starts_at"),
        ({"created_by": ""}, "created_by", "at least 1 character"),
        ({"id": "mine"}, "id", "unknown field"),
    ],
)
def test_a_bad_field_is_400_naming_it(
    client: httpx.Client, overrides: dict[str, object], field: str, says: str
) -> None:
    response = client.post("/api/v1/silences", json=a_silence(**overrides))
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert detail.startswith(f"{field}: ")
    assert says in detail


def test_a_silence_that_is_over_is_400(client: httpx.Client) -> None:
    past = datetime.now(UTC) - HOUR
    body = a_silence(starts_at=rfc3339(past - HOUR), ends_at=rfc3339(past))
    response = client.post("/api/v1/silences", json=body)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("ends_at: expected a time in the future")


@pytest.mark.parametrize(("content", "says"), [(b"[1, 2]", "found an array"), (b"{", "not JSON")])
def test_a_body_that_is_not_a_json_object_is_400(
    client: httpx.Client, content: bytes, says: str
) -> None:
    response = client.post("/api/v1/silences", content=content, headers=JSON_TYPE)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("body: expected a JSON object")
    assert says in response.json()["detail"]


def test_a_missing_ends_at_is_400(client: httpx.Client) -> None:
    body = a_silence()
    del body["ends_at"]
    response = client.post("/api/v1/silences", json=body)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("ends_at: ")


@pytest.mark.parametrize(("params", "field"), [({"all": "maybe"}, "all"), ({"x": "1"}, "x")])
def test_a_bad_listing_parameter_is_400(
    client: httpx.Client, params: dict[str, str], field: str
) -> None:
    response = client.get("/api/v1/silences", params=params)
    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"{field}: ")


# -- the token ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/v1/silences"), ("POST", "/api/v1/silences"), ("DELETE", "/api/v1/silences/x")],
)
def test_without_the_token_the_silence_routes_are_401(
    base: str, state: StateStore, method: str, path: str
) -> None:
    response = httpx.request(method, base + path, json=a_silence(), timeout=10)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert state.silences(datetime.now(UTC)) == []


# -- the pipeline ---------------------------------------------------------------------------------


def test_a_silence_posted_through_the_api_mutes_the_next_alerting_step(
    client: httpx.Client, state: StateStore
) -> None:
    created = create(client)
    alerted = alert_now(state)
    assert [s.silence.id for s in alerted.suppressed] == [created["id"]]
    assert state.outbox_rows() == []
