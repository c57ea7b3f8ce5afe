"""Local receivers for the sender tests: real HTTP servers on 127.0.0.1 (stdlib
`ThreadingHTTPServer` in a thread, on a free port) that enforce each receiver's documented
contract, answer as the real service does, and record what arrived. Scripted replies stand in
for the failures a test needs (429 with Retry-After, bursts of 5xx, slow answers, 400s).

Contracts, as documented by each service:
- Slack incoming webhooks and Block Kit: 200 `ok`; a malformed body 400 `invalid_payload`;
  blocks beyond the limits (50 blocks; header plain_text <= 150; section text <= 3000, fields
  <= 10 of <= 2000; context elements <= 10; button text <= 75, url <= 3000) 400 `invalid_blocks`;
  an unknown webhook path 404 `no_service`.
- PagerDuty Events API v2: 202 with `dedup_key`; 400 `invalid event` with `errors` for a
  routing key that is not 32 characters, an unknown `event_action`, a `dedup_key` over 255, a
  trigger without `summary` (<= 1024), `source` or a known `severity`. Incidents are modelled:
  a trigger opens one per open dedup_key, a resolve closes it.
- Alertmanager webhook payload version 4: every field of the message and of each alert, with
  the zero `endsAt` while firing; with a secret, `X-Featmon-Signature` verified over the raw body
  (401 otherwise).
- Alertmanager `POST /api/v2/alerts`: a list of alerts with valid label names, RFC 3339 times,
  `endsAt` not before `startsAt` (400 otherwise).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import MappingProxyType
from typing import Any

from alerts.model import AlertEvent, AlertState, Notification

# --- servers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arrival:
    """One request as it arrived."""

    method: str
    path: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    at: float  # time.monotonic()

    def json(self) -> Any:  # noqa: ANN401 - a JSON document has any shape; tests index into it
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    """An answer: status, body, headers, and how long to wait before giving it."""

    status: int = 200
    body: str = ""
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    delay: float = 0.0


Contract = Callable[[Arrival], Reply]


class LoopbackReceiver:
    """A real HTTP server on 127.0.0.1: answers each POST with the next scripted reply, else
    with what `contract` says, and records every arrival."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self.arrivals: list[Arrival] = []
        self.replies: list[Reply] = []  # what was answered, in order
        self._script: list[Reply] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with these, in order, whatever they hold."""
        with self._lock:
            self._script.extend(replies)

    def bodies(self) -> list[Any]:
        return [arrival.json() for arrival in self.arrivals]

    def answer(self, arrival: Arrival) -> Reply:
        with self._lock:
            self.arrivals.append(arrival)
            scripted = self._script.pop(0) if self._script else None
        reply = scripted or self.contract(arrival)
        with self._lock:
            self.replies.append(reply)
        return reply

    def _serve(self) -> None:
        self._server.serve_forever(poll_interval=0.02)  # shutdown() waits up to one interval

    def start(self) -> LoopbackReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler(receiver: LoopbackReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            reply = receiver.answer(Arrival("POST", self.path, headers, body, time.monotonic()))
            if reply.delay:
                time.sleep(reply.delay)
            data = reply.body.encode("utf-8")
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client gave up waiting (a timeout test)
                self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: tests read `arrivals`, not stderr."""

    return Handler


@contextmanager
def serving(contract: Contract) -> Iterator[LoopbackReceiver]:
    receiver = LoopbackReceiver(contract).start()
    try:
        yield receiver
    finally:
        receiver.stop()


def closed_port_url() -> str:
    """A loopback URL nobody listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- Slack ------------------------------------------------------------------------------------

SLACK_PATH = "/services/T0FEATMON/B0FEATMON/xoxTOKENs3cr3tw3bh00k"


def slack_contract(arrival: Arrival) -> Reply:
    if arrival.path != SLACK_PATH:
        return Reply(404, "no_service")
    if not arrival.headers.get("content-type", "").startswith("application/json"):
        return Reply(400, "invalid_payload")
    try:
        message = arrival.json()
    except ValueError:
        return Reply(400, "invalid_payload")
    if not isinstance(message, dict):
        return Reply(400, "invalid_payload")
    if not message.get("text") and not message.get("blocks"):
        return Reply(400, "no_text")
    if slack_problems(message):
        return Reply(400, "invalid_blocks")
    return Reply(200, "ok", {"Content-Type": "text/html"})


def slack_problems(message: Mapping[str, Any]) -> list[str]:
    """What Slack's Block Kit limits refuse in `message`: [] when it is within them."""
    problems: list[str] = []
    if "text" in message and not isinstance(message["text"], str):
        problems.append("text: not a string")
    blocks = message.get("blocks", [])
    if not isinstance(blocks, list) or len(blocks) > 50:
        return [*problems, "blocks: not a list of at most 50"]
    for i, block in enumerate(blocks):
        problems += [f"blocks[{i}].{p}" for p in _block_problems(block)]
    return problems


def _block_problems(block: Mapping[str, Any]) -> list[str]:
    kind = block.get("type")
    if len(block.get("block_id", "")) > 255:
        return ["block_id: over 255"]
    if kind == "divider":
        return []
    if kind == "header":
        return _text_problems(block.get("text"), 150, plain_only=True)
    if kind == "section":
        if "text" not in block and "fields" not in block:
            return ["section: neither text nor fields"]
        out = _text_problems(block["text"], 3000) if "text" in block else []
        fields = block.get("fields", [])
        if not isinstance(fields, list) or len(fields) > 10:
            return [*out, "fields: over 10"]
        return out + [p for f in fields for p in _text_problems(f, 2000)]
    if kind == "context":
        elements = block.get("elements", [])
        if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
            return ["context: 1 to 10 elements"]
        return [p for e in elements for p in _text_problems(e, 3000)]
    if kind == "actions":
        elements = block.get("elements", [])
        if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
            return ["actions: 1 to 25 elements"]
        return [p for e in elements for p in _button_problems(e)]
    return [f"type: unknown block {kind!r}"]


def _text_problems(text: object, limit: int, plain_only: bool = False) -> list[str]:
    kinds = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if not isinstance(text, dict) or text.get("type") not in kinds:
        return [f"text: expected a {' or '.join(kinds)} object"]
    body = text.get("text")
    if not isinstance(body, str) or not 1 <= len(body) <= limit:
        return [
            f"text: 1 to {limit} characters, found {len(body) if isinstance(body, str) else body!r}"
        ]
    return []


def _button_problems(button: object) -> list[str]:
    if not isinstance(button, dict) or button.get("type") != "button":
        return ["element: expected a button"]
    out = _text_problems(button.get("text"), 75, plain_only=True)
    if "url" in button and not 1 <= len(button["url"]) <= 3000:
        out.append("url: 1 to 3000 characters")
    return out


# --- PagerDuty --------------------------------------------------------------------------------

ROUTING_KEY = "R0UT1NGKEYs3cr3t0123456789abcdef"  # 32 characters, as PagerDuty's are
PD_SEVERITIES = ("critical", "error", "warning", "info")


class PagerDuty:
    """The Events API v2 endpoint, with the incidents its events open and close."""

    def __init__(self) -> None:
        self.open: set[str] = set()
        self.opened = 0  # incidents ever opened

    def __call__(self, arrival: Arrival) -> Reply:
        if arrival.path != "/v2/enqueue":
            return Reply(404, "not found")
        try:
            event = arrival.json()
        except ValueError:
            return _pd_invalid(["Event object is not valid JSON"])
        if problems := pagerduty_problems(event):
            return _pd_invalid(problems)
        key, action = event.get("dedup_key") or f"auto-{self.opened}", event["event_action"]
        if action == "trigger" and key not in self.open:
            self.open.add(key)
            self.opened += 1
        elif action == "resolve":
            self.open.discard(key)
        body = {"status": "success", "message": "Event processed", "dedup_key": key}
        return Reply(202, json.dumps(body), {"Content-Type": "application/json"})


def _pd_invalid(errors: list[str]) -> Reply:
    body = {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
    return Reply(400, json.dumps(body), {"Content-Type": "application/json"})


def pagerduty_problems(event: object) -> list[str]:
    """What the Events API v2 refuses in `event`: [] when it is a valid alert event."""
    if not isinstance(event, dict):
        return ["event: expected an object"]
    out = []
    if not isinstance(event.get("routing_key"), str) or len(event["routing_key"]) != 32:
        out.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    action = event.get("event_action")
    if action not in ("trigger", "acknowledge", "resolve"):
        out.append("'event_action' is invalid (must be one of: trigger, acknowledge, resolve)")
    key = event.get("dedup_key")
    if key is not None and (not isinstance(key, str) or len(key) > 255):
        out.append("'dedup_key' is invalid (a string of at most 255 characters)")
    if action in ("acknowledge", "resolve") and not key:
        out.append("'dedup_key' is required for acknowledge and resolve")
    if action == "trigger":
        out += _payload_problems(event.get("payload"))
    links = event.get("links", [])
    if not isinstance(links, list) or not all(isinstance(x, dict) and x.get("href") for x in links):
        out.append("'links' must be objects with an href")
    return out


def _payload_problems(payload: object) -> list[str]:
    if not isinstance(payload, dict):
        return ["'payload' is missing or not an object"]
    out = []
    summary = payload.get("summary")
    if not isinstance(summary, str) or not 1 <= len(summary) <= 1024:
        out.append("'payload.summary' is required, at most 1024 characters")
    if not isinstance(payload.get("source"), str) or not payload["source"]:
        out.append("'payload.source' is required")
    if payload.get("severity") not in PD_SEVERITIES:
        out.append("'payload.severity' must be one of critical, error, warning, info")
    if "timestamp" in payload:
        try:
            datetime.fromisoformat(payload["timestamp"])
        except (TypeError, ValueError):
            out.append("'payload.timestamp' is not ISO 8601")
    if not isinstance(payload.get("custom_details", {}), dict):
        out.append("'payload.custom_details' must be an object")
    return out


# --- Alertmanager's webhook payload and API ---------------------------------------------------

WEBHOOK_PATH = "/hooks/featmon-s3cr3t-path-t0ken"
HMAC_SECRET = "hm4c-s3cr3t-for-the-webhook"
ZERO = "0001-01-01T00:00:00Z"
_STRING_MAPS = ("groupLabels", "commonLabels", "commonAnnotations")


def webhook_contract(secret: str | None = None, header: str = "X-Featmon-Signature") -> Contract:
    def answer(arrival: Arrival) -> Reply:
        if arrival.path != WEBHOOK_PATH:
            return Reply(404, "no such hook")
        if secret is not None:
            want = "sha256=" + hmac.new(secret.encode(), arrival.body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(arrival.headers.get(header.lower(), ""), want):
                return Reply(401, "bad signature")
        try:
            problems = webhook_problems(arrival.json())
        except ValueError:
            problems = ["not JSON"]
        return Reply(400, "; ".join(problems)) if problems else Reply(200, "")

    return answer


def webhook_problems(message: object) -> list[str]:
    """What a receiver written for Alertmanager's webhook payload version 4 cannot read."""
    if not isinstance(message, dict):
        return ["message: expected an object"]
    out = []
    if message.get("version") != "4":
        out.append("version: expected '4'")
    for key in ("groupKey", "receiver", "externalURL"):
        if not isinstance(message.get(key), str):
            out.append(f"{key}: expected a string")
    if message.get("status") not in ("firing", "resolved"):
        out.append("status: expected firing or resolved")
    if not isinstance(message.get("truncatedAlerts"), int):
        out.append("truncatedAlerts: expected an integer")
    out += [f"{key}: expected strings" for key in _STRING_MAPS if not _strings(message.get(key))]
    alerts = message.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        return [*out, "alerts: expected a non-empty list"]
    for i, alert in enumerate(alerts):
        out += [f"alerts[{i}].{p}" for p in _webhook_alert_problems(alert)]
    return out


def _webhook_alert_problems(alert: object) -> list[str]:
    if not isinstance(alert, dict):
        return ["expected an object"]
    out = [
        f"{key}: expected strings"
        for key in ("labels", "annotations")
        if not _strings(alert.get(key))
    ]
    if alert.get("status") not in ("firing", "resolved"):
        out.append("status: expected firing or resolved")
    for key in ("generatorURL", "fingerprint"):
        if not isinstance(alert.get(key), str):
            out.append(f"{key}: expected a string")
    if _time(alert.get("startsAt")) is None or _time(alert.get("endsAt")) is None:
        return [*out, "startsAt/endsAt: expected RFC 3339"]
    if alert["status"] == "firing" and alert["endsAt"] != ZERO:
        out.append(f"endsAt: a firing alert ends at {ZERO}")
    if alert["status"] == "resolved" and alert["endsAt"] == ZERO:
        out.append("endsAt: a resolved alert has its end")
    return out


def alertmanager_contract(arrival: Arrival) -> Reply:
    """`POST /api/v2/alerts` as Alertmanager 0.25 validates it."""
    if arrival.path != "/api/v2/alerts":
        return Reply(404, "404 page not found")
    try:
        alerts = arrival.json()
    except ValueError:
        return Reply(400, "not JSON")
    if not isinstance(alerts, list):
        return Reply(400, "expected a list of alerts")
    for alert in alerts:
        labels = alert.get("labels") if isinstance(alert, dict) else None
        if not _strings(labels) or not labels:
            return Reply(400, "at least one label pair required")
        if bad := [n for n in labels if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", n)]:
            return Reply(400, f"invalid label set: invalid name {bad[0]!r}")
        starts, ends = _time(alert.get("startsAt")), _time(alert.get("endsAt"))
        if starts is None or ends is None:
            return Reply(400, "startsAt and endsAt must be RFC 3339")
        if ends < starts:
            return Reply(400, "start time must be before end time")
    return Reply(200, "")


def _strings(value: object) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


# --- notifications the tests send -------------------------------------------------------------

T0 = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
REPORT = "https://featmon.example/reports/run-42.html"


def make_alert(
    check: str = "freshness",
    view: str = "user_stats",
    *,
    state: AlertState = AlertState.FIRING,
    severity: str = "P1",
    store: str = "redis_prod",
    annotations: Mapping[str, str] | None = None,
    starts_at: datetime = T0,
    ends_at: datetime | None = None,
    report_url: str | None = REPORT,
    **labels: str,
) -> AlertEvent:
    """A freshness alert on user_stats: p99 age 2h 03m against max 1h, unless told otherwise."""
    given = {"check": check, "feature_view": view, "store": store, "severity": severity}
    notes = {
        "kind": "freshness",
        "value": "7380",
        "unit": "seconds",
        "threshold": "max 1h 00m",
        "sample_size": "2000",
    }
    return AlertEvent(
        labels={k: v for k, v in {**given, **labels}.items() if v},
        annotations=notes if annotations is None else dict(annotations),
        state=state,
        starts_at=starts_at,
        ends_at=ends_at,
        severity=severity,
        report_url=report_url,
    )


def make_notification(
    *alerts: AlertEvent,
    receiver: str = "team",
    created_at: datetime = T0 + timedelta(minutes=5),
    group_labels: Mapping[str, str] | None = None,
) -> Notification:
    chosen = alerts or (make_alert(),)
    groups = {"feature_view": "user_stats"} if group_labels is None else dict(group_labels)
    return Notification(
        receiver=receiver,
        group_key='{}:{feature_view="user_stats"}',
        group_labels=groups,
        alerts=chosen,
        created_at=created_at,
        external_url="https://featmon.example/",
    )
