"""The senders against real HTTP servers on loopback that enforce each receiver's documented
contract (tests/receivers.py): what arrived, how often, and which `DeliveryFailed` was raised."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from alerts.abc import Sender
from alerts.config import (
    AlertmanagerReceiver,
    FileReceiver,
    PagerDutyReceiver,
    Receiver,
    SlackReceiver,
    WebhookReceiver,
)
from alerts.errors import DeliveryFailed
from alerts.model import AlertEvent, AlertState
from alerts.senders import build_sender, new_client
from alerts.senders.alertmanager import AlertmanagerSender
from alerts.senders.content import label_name
from alerts.senders.file import FileSender
from alerts.senders.pagerduty import PagerDutySender, dedup_key
from alerts.senders.slack import RateLimiter, SlackSender, slack_message
from alerts.senders.transport import parse_retry_after
from alerts.senders.webhook import WebhookSender
from tests.receivers import (
    HMAC_SECRET,
    REPORT,
    ROUTING_KEY,
    SLACK_PATH,
    T0,
    WEBHOOK_PATH,
    LoopbackReceiver,
    PagerDuty,
    Reply,
    alertmanager_contract,
    closed_port_url,
    make_alert,
    make_notification,
    serving,
    slack_contract,
    slack_problems,
    webhook_contract,
)

RESOLVED = make_alert(state=AlertState.RESOLVED, ends_at=T0 + timedelta(minutes=4))
SLACK_TOKEN = SLACK_PATH.rsplit("/", 1)[1]


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with new_client() as made:
        yield made


@pytest.fixture
def slack_server() -> Iterator[LoopbackReceiver]:
    with serving(slack_contract) as server:
        yield server


@pytest.fixture
def pagerduty() -> Iterator[tuple[LoopbackReceiver, PagerDuty]]:
    service = PagerDuty()
    with serving(service) as server:
        yield server, service


def slack(server: LoopbackReceiver, client: httpx.Client, **settings: object) -> SlackSender:
    config = SlackReceiver.model_validate(
        {"type": "slack", "webhook_url": server.url + SLACK_PATH, "max_per_second": 100} | settings
    )
    return SlackSender("team-slack", config, client)


def pd(server: LoopbackReceiver, client: httpx.Client) -> PagerDutySender:
    config = PagerDutyReceiver(
        type="pagerduty", routing_key=ROUTING_KEY, url=server.url + "/v2/enqueue"
    )
    return PagerDutySender("oncall", config, client)


def webhook(url: str, client: httpx.Client, **settings: object) -> WebhookSender:
    config = WebhookReceiver.model_validate({"type": "webhook", "url": url} | settings)
    return WebhookSender("hook", config, client)


def failure_of(sender: Sender, *alerts: AlertEvent) -> DeliveryFailed:
    with pytest.raises(DeliveryFailed) as caught:
        sender.send(make_notification(*alerts))
    return caught.value


# --- the failure values ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("Thu, 26 Nov 2026 06:00:30 GMT", 30.0),
        ("Thu, 26 Nov 2026 05:59:00 GMT", 0.0),
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_as_an_http_date(
    value: str | None, seconds: float | None
) -> None:
    assert parse_retry_after(value, now=datetime(2026, 11, 26, 6, 0, tzinfo=UTC)) == seconds


def test_a_failure_says_whether_and_when_to_retry() -> None:
    assert str(DeliveryFailed("team", "HTTP 429", False, 7.0)) == (
        "receiver 'team': HTTP 429 (retryable after 7s)"
    )
    assert str(DeliveryFailed("team", "HTTP 404", True)).endswith("(permanent)")


def test_a_permanent_failure_cannot_carry_a_retry_hint() -> None:
    with pytest.raises(ValueError, match="no retry_after"):
        DeliveryFailed("team", "HTTP 404", True, 3.0)


def test_pending_alerts_are_never_delivered(client: httpx.Client) -> None:
    pending = make_alert(state=AlertState.PENDING)
    with serving(webhook_contract()) as server:
        webhook(server.url + WEBHOOK_PATH, client).send(make_notification(pending))
        webhook(server.url + WEBHOOK_PATH, client).send(make_notification(pending, RESOLVED))
    assert [len(body["alerts"]) for body in server.bodies()] == [1]


@pytest.mark.parametrize(
    ("settings", "kind"),
    [
        (SlackReceiver(type="slack", webhook_url="https://hooks.example/x"), SlackSender),
        (PagerDutyReceiver(type="pagerduty", routing_key=ROUTING_KEY), PagerDutySender),
        (WebhookReceiver(type="webhook", url="https://hooks.example/x"), WebhookSender),
        (AlertmanagerReceiver(type="alertmanager", peers=("http://am:9093",)), AlertmanagerSender),
        (FileReceiver(type="file", path="alerts.jsonl"), FileSender),
    ],
)
def test_the_sender_is_chosen_by_the_type_of_its_settings(
    settings: Receiver, kind: type[Sender], client: httpx.Client
) -> None:
    sender = build_sender("r", settings, client)
    assert type(sender) is kind
    assert sender.name == "r"


def test_no_secret_is_in_the_repr_of_senders_or_settings(client: httpx.Client) -> None:
    settings: list[Receiver] = [
        SlackReceiver(type="slack", webhook_url=f"https://hooks.slack.com{SLACK_PATH}"),
        PagerDutyReceiver(type="pagerduty", routing_key=ROUTING_KEY),
        WebhookReceiver(type="webhook", url=WEBHOOK_PATH, hmac_secret=HMAC_SECRET),
    ]
    for setting in settings:
        sender = build_sender("r", setting, client)
        shown = " ".join([repr(setting), str(setting), repr(sender), str(sender)])
        for secret in (SLACK_TOKEN, ROUTING_KEY, "s3cr3t", HMAC_SECRET):
            assert secret not in shown


# --- Slack ------------------------------------------------------------------------------------


def test_slack_gets_a_block_kit_message_with_value_threshold_and_report(
    slack_server: LoopbackReceiver, client: httpx.Client
) -> None:
    slack(slack_server, client).send(make_notification(make_alert()))
    assert [r.status for r in slack_server.replies] == [200]
    message = slack_server.bodies()[0]
    header, facts, _, alert, actions = message["blocks"]
    assert header["text"]["text"] == ":red_circle: FIRING · P1 · user_stats"
    assert "*Store*\nredis_prod" in [f["text"] for f in facts["fields"]]
    assert "measured *2h 03m* · threshold max 1h 00m · sample 2000" in alert["text"]["text"]
    assert actions["elements"][0]["url"] == REPORT
    assert message["text"].startswith("FIRING · P1 · user_stats\n• P1 freshness on user_stats")


def test_slack_limits_are_kept_by_truncating_with_and_n_more(
    slack_server: LoopbackReceiver, client: httpx.Client
) -> None:
    long = {"summary": "s" * 4000}
    many = [make_alert(f"check_{i:02d}", "v" * 200, annotations=long) for i in range(60)]
    labels = {f"label_{i:02d}": "x" * 2500 for i in range(15)}
    notification = make_notification(*many, group_labels=labels)
    message = slack_message(notification, list(notification.alerts))
    assert slack_problems(message) == []
    assert len(message["blocks"]) == 50
    assert message["blocks"][-2]["elements"][0]["text"] == "… and 15 more alerts"
    assert message["blocks"][1]["fields"][-1]["text"] == "*…*\nand 10 more"
    assert len(message["text"]) <= 3000
    slack(slack_server, client).send(notification)
    assert [r.status for r in slack_server.replies] == [200]


def test_slack_mrkdwn_from_a_store_is_escaped() -> None:
    notification = make_notification(make_alert(feature="<!channel> & <https://x|y>"))
    section = slack_message(notification, list(notification.alerts))["blocks"][3]
    assert "user_stats.&lt;!channel&gt; &amp; &lt;https://x|y&gt;" in section["text"]["text"]


def test_slack_without_send_resolved_posts_only_firing_alerts(
    slack_server: LoopbackReceiver, client: httpx.Client
) -> None:
    sender = slack(slack_server, client, send_resolved=False)
    sender.send(make_notification(RESOLVED))
    assert slack_server.arrivals == []
    sender.send(make_notification(make_alert("coverage"), RESOLVED))
    texts = [b["text"]["text"] for b in slack_server.bodies()[0]["blocks"][3:-1]]
    assert len(texts) == 1
    assert "coverage" in texts[0]


def test_slack_posts_resolved_alerts_by_default(
    slack_server: LoopbackReceiver, client: httpx.Client
) -> None:
    slack(slack_server, client).send(make_notification(RESOLVED))
    header = slack_server.bodies()[0]["blocks"][0]["text"]["text"]
    assert header == ":large_green_circle: RESOLVED · P1 · user_stats"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, "invalid_blocks"),
        (400, "invalid_payload"),
        (403, "action_prohibited"),
        (404, "channel_not_found"),
        (410, "channel_is_archived"),
    ],
)
def test_slack_refusals_are_permanent_and_keep_slacks_error(
    status: int, error: str, slack_server: LoopbackReceiver, client: httpx.Client
) -> None:
    slack_server.script(Reply(status, error))
    failed = failure_of(slack(slack_server, client))
    assert failed.permanent
    assert failed.reason == f"HTTP {status}: {error}"


def test_slack_answering_200_without_ok_is_a_permanent_failure(
    slack_server: LoopbackReceiver, client: httpx.Client
) -> None:
    slack_server.script(Reply(200, "<html>login</html>"))
    assert failure_of(slack(slack_server, client)).permanent


def test_slack_429_is_retried_after_retry_after_and_nothing_is_sent_meanwhile(
    slack_server: LoopbackReceiver, client: httpx.Client
) -> None:
    slack_server.script(Reply(429, "rate_limited", {"Retry-After": "7"}))
    sender = slack(slack_server, client)
    first = failure_of(sender)
    assert (first.permanent, first.retry_after) == (False, 7.0)
    second = failure_of(sender)
    assert not second.permanent
    assert second.retry_after is not None
    assert 6.0 < second.retry_after <= 7.0
    assert len(slack_server.arrivals) == 1


def test_slack_5xx_bursts_are_retryable_until_slack_recovers(
    slack_server: LoopbackReceiver, client: httpx.Client
) -> None:
    slack_server.script(Reply(500, "rollup_error"), Reply(502), Reply(503))
    sender = slack(slack_server, client)
    failures = [failure_of(sender) for _ in range(3)]
    assert [(f.permanent, f.retry_after) for f in failures] == [(False, None)] * 3
    sender.send(make_notification())
    assert [r.status for r in slack_server.replies] == [500, 502, 503, 200]


def test_slack_sends_are_paced_per_webhook() -> None:
    now = [100.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(1.0, clock=lambda: now[0], sleep=sleep)
    assert [limiter.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert waits == [1.0, 1.0]
    now[0] += 5
    limiter.acquire()
    assert waits == [1.0, 1.0]


def test_slack_pacing_spaces_real_requests(
    slack_server: LoopbackReceiver, client: httpx.Client
) -> None:
    sender = slack(slack_server, client, max_per_second=10)
    for _ in range(3):
        sender.send(make_notification())
    times = [a.at for a in slack_server.arrivals]
    # Three sends at 10 per second span at least two intervals (0.2 s), however the network
    # jitters one arrival against the next.
    assert len(times) == 3
    assert times[-1] - times[0] >= 0.19


def test_a_slow_receiver_times_out_as_retryable(
    slack_server: LoopbackReceiver, client: httpx.Client
) -> None:
    slack_server.script(Reply(200, "ok", delay=1.0))
    failed = failure_of(slack(slack_server, client, timeout="200ms"))
    assert (failed.permanent, failed.reason) == (False, "no answer within 0.2s")


def test_a_refused_connection_is_retryable(client: httpx.Client) -> None:
    config = SlackReceiver(type="slack", webhook_url=closed_port_url() + SLACK_PATH)
    failed = failure_of(SlackSender("team-slack", config, client))
    assert not failed.permanent
    assert failed.reason.startswith("no connection:")


def test_a_webhook_url_that_is_not_http_fails_permanently_without_quoting_it(
    client: httpx.Client,
) -> None:
    config = SlackReceiver(type="slack", webhook_url=f"ftp://hooks{SLACK_PATH}")
    failed = failure_of(SlackSender("team-slack", config, client))
    assert failed.permanent
    assert SLACK_TOKEN not in "".join(traceback.format_exception(failed))


def test_the_webhook_secret_reaches_no_log_and_no_error(
    slack_server: LoopbackReceiver, client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sender = slack(slack_server, client)
    sender.send(make_notification())
    slack_server.script(Reply(404, f"channel_not_found for {SLACK_PATH}"))
    failed = failure_of(sender)
    refused = failure_of(
        SlackSender(
            "team-slack",
            SlackReceiver(type="slack", webhook_url=closed_port_url() + SLACK_PATH),
            client,
        )
    )
    assert "HTTP Request: POST http://127.0.0.1" in caplog.text
    shown = caplog.text + "".join(
        traceback.format_exception(failed) + traceback.format_exception(refused)
    )
    assert SLACK_TOKEN not in shown


# --- PagerDuty --------------------------------------------------------------------------------


def test_pagerduty_gets_one_trigger_per_alert_with_the_documented_fields(
    pagerduty: tuple[LoopbackReceiver, PagerDuty], client: httpx.Client
) -> None:
    server, service = pagerduty
    first, second = make_alert(), make_alert("coverage", severity="P3", feature="revenue")
    pd(server, client).send(make_notification(first, second))
    assert [r.status for r in server.replies] == [202, 202]
    event = server.bodies()[0]
    assert event["dedup_key"] == f"featmon-{first.fingerprint}"
    assert event["event_action"] == "trigger"
    assert event["links"] == [{"href": REPORT, "text": "featmon report"}]
    payload = event["payload"]
    assert payload["summary"] == (
        "freshness on user_stats (redis_prod): 2h 03m, threshold max 1h 00m"
    )
    assert (payload["severity"], payload["component"], payload["group"], payload["class"]) == (
        "critical", "user_stats", "redis_prod", "freshness"
    )  # fmt: skip
    assert payload["timestamp"] == "2026-11-26T06:00:00Z"
    assert payload["custom_details"]["value"] == "2h 03m"
    assert payload["custom_details"]["sample_size"] == "2000"
    assert server.bodies()[1]["payload"]["severity"] == "warning"
    assert service.opened == 2


@pytest.mark.parametrize(
    ("level", "severity"),
    [("P1", "critical"), ("P2", "error"), ("P3", "warning"), ("P4", "info")],
)
def test_pagerduty_severity_follows_the_alerts_level(
    level: str, severity: str, pagerduty: tuple[LoopbackReceiver, PagerDuty], client: httpx.Client
) -> None:
    server, _ = pagerduty
    pd(server, client).send(make_notification(make_alert(severity=level)))
    assert server.bodies()[0]["payload"]["severity"] == severity


def test_pagerduty_retries_and_restarts_never_open_a_second_incident(
    pagerduty: tuple[LoopbackReceiver, PagerDuty], client: httpx.Client
) -> None:
    server, service = pagerduty
    pd(server, client).send(make_notification())
    pd(server, client).send(make_notification())  # a retry, or a restarted daemon
    assert service.opened == 1
    pd(server, client).send(make_notification(RESOLVED))
    assert service.open == set()
    assert server.bodies()[2] == {
        "routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": dedup_key(RESOLVED)
    }  # fmt: skip


def test_pagerduty_summary_is_cut_to_1024_characters(
    pagerduty: tuple[LoopbackReceiver, PagerDuty], client: httpx.Client
) -> None:
    server, _ = pagerduty
    pd(server, client).send(make_notification(make_alert(annotations={"summary": "x" * 5000})))
    assert [r.status for r in server.replies] == [202]
    assert len(server.bodies()[0]["payload"]["summary"]) == 1024


def test_pagerduty_400_is_permanent_and_the_other_alerts_are_still_sent(
    pagerduty: tuple[LoopbackReceiver, PagerDuty], client: httpx.Client
) -> None:
    server, service = pagerduty
    server.script(
        Reply(
            400,
            json.dumps(
                {"message": "Event object is invalid", "errors": [f"bad key {ROUTING_KEY}"]}
            ),
        )
    )
    failed = failure_of(pd(server, client), make_alert(), make_alert("coverage"))
    assert failed.permanent
    assert failed.reason == (
        "1 of 2 events rejected; first: HTTP 400: Event object is invalid; bad key ***"
    )
    assert service.opened == 1


@pytest.mark.parametrize(
    ("reply", "retry_after"),
    [
        (Reply(429, "Request Limit Exceeded"), 30.0),
        (Reply(429, "", {"Retry-After": "12"}), 12.0),
        (Reply(500), None),
        (Reply(503, "", {"Retry-After": "2"}), 2.0),
    ],
)
def test_pagerduty_429_and_5xx_stop_the_batch_as_retryable(
    reply: Reply,
    retry_after: float | None,
    pagerduty: tuple[LoopbackReceiver, PagerDuty],
    client: httpx.Client,
) -> None:
    server, _ = pagerduty
    server.script(reply)
    failed = failure_of(pd(server, client), make_alert(), make_alert("coverage"))
    assert (failed.permanent, failed.retry_after) == (False, retry_after)
    assert len(server.arrivals) == 1


def test_a_retry_after_date_is_counted_from_now(
    pagerduty: tuple[LoopbackReceiver, PagerDuty], client: httpx.Client
) -> None:
    server, _ = pagerduty
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    server.script(Reply(429, "", {"Retry-After": when}))
    failed = failure_of(pd(server, client))
    assert failed.retry_after is not None
    assert 27.0 < failed.retry_after <= 30.0


# --- webhook ----------------------------------------------------------------------------------


def test_the_webhook_gets_alertmanagers_payload_version_4(client: httpx.Client) -> None:
    firing = make_alert()
    with serving(webhook_contract()) as server:
        webhook(server.url + WEBHOOK_PATH, client).send(make_notification(firing, RESOLVED))
    assert [r.status for r in server.replies] == [200]
    message = server.bodies()[0]
    assert (message["version"], message["status"], message["truncatedAlerts"]) == ("4", "firing", 0)
    assert message["groupKey"] == '{}:{feature_view="user_stats"}'
    assert message["commonLabels"]["alertname"] == "freshness"
    assert [a["endsAt"] for a in message["alerts"]] == [
        "0001-01-01T00:00:00Z",
        "2026-11-26T06:04:00Z",
    ]
    assert message["alerts"][0]["fingerprint"] == firing.fingerprint
    assert message["alerts"][0]["generatorURL"] == REPORT


def test_the_webhook_truncates_to_max_alerts_and_counts_the_rest(client: httpx.Client) -> None:
    with serving(webhook_contract()) as server:
        hook = webhook(server.url + WEBHOOK_PATH, client, max_alerts=2)
        hook.send(make_notification(*(make_alert(f"c{i}") for i in range(5))))
    message = server.bodies()[0]
    assert (len(message["alerts"]), message["truncatedAlerts"]) == (2, 3)


def test_the_webhook_signature_verifies_over_the_raw_body(client: httpx.Client) -> None:
    with serving(webhook_contract(HMAC_SECRET)) as server:
        url = server.url + WEBHOOK_PATH
        webhook(url, client, hmac_secret=HMAC_SECRET).send(make_notification())
        wrong = "another-secret"
        failed = failure_of(webhook(url, client, hmac_secret=wrong))
    assert [r.status for r in server.replies] == [200, 401]
    assert server.arrivals[0].headers["x-featmon-signature"].startswith("sha256=")
    assert failed.permanent
    assert wrong not in str(failed)


@pytest.mark.parametrize(
    ("status", "permanent"),
    [(400, True), (401, True), (404, True), (408, False), (429, False), (500, False), (503, False)],
)
def test_webhook_4xx_is_permanent_except_408_and_429(
    status: int, permanent: bool, client: httpx.Client
) -> None:
    with serving(webhook_contract()) as server:
        server.script(Reply(status))
        failed = failure_of(webhook(server.url + WEBHOOK_PATH, client))
    assert failed.permanent is permanent


def test_any_2xx_from_a_webhook_is_delivered(client: httpx.Client) -> None:
    with serving(webhook_contract()) as server:
        server.script(Reply(204))
        webhook(server.url + WEBHOOK_PATH, client).send(make_notification())
    assert len(server.arrivals) == 1


# --- Alertmanager (fake peers; a real Alertmanager in test_alertmanager.py) ---------------------


def alertmanager(peers: list[str], client: httpx.Client) -> AlertmanagerSender:
    config = AlertmanagerReceiver(type="alertmanager", peers=tuple(peers), resend_interval="1m")
    return AlertmanagerSender("am", config, client)


def test_alertmanager_alerts_go_to_every_peer(client: httpx.Client) -> None:
    with serving(alertmanager_contract) as one, serving(alertmanager_contract) as two:
        alertmanager([one.url, two.url + "/"], client).send(
            make_notification(make_alert(), RESOLVED)
        )
    assert one.bodies() == two.bodies()
    firing, resolved = one.bodies()[0]
    assert firing["endsAt"] == "2026-11-26T06:09:00Z"  # created 06:05 + 4 x 1m
    assert resolved["endsAt"] == "2026-11-26T06:05:00Z"  # now: the notification's time
    assert firing["labels"]["alertname"] == "freshness"


def test_alertmanager_delivery_succeeds_when_one_peer_accepts_and_says_so(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    with serving(alertmanager_contract) as one:
        alertmanager([closed_port_url(), one.url], client).send(make_notification())
    assert len(one.arrivals) == 1
    assert "accepted by 1 of 2 Alertmanagers" in caplog.text


def test_with_no_peer_accepting_the_failure_is_permanent_only_if_every_peer_refused(
    client: httpx.Client,
) -> None:
    with serving(alertmanager_contract) as one:
        one.script(Reply(400, "bad alerts"))
        refused = failure_of(alertmanager([one.url], client))
        one.script(Reply(400, "bad alerts"), Reply(503, "", {"Retry-After": "4"}))
        mixed = failure_of(alertmanager([one.url, one.url], client))
    down = failure_of(alertmanager([closed_port_url(), closed_port_url()], client))
    assert refused.permanent
    assert (mixed.permanent, mixed.retry_after) == (False, 4.0)
    assert not down.permanent


@pytest.mark.parametrize(
    ("name", "valid"), [("team", "team"), ("team-name", "team_name"), ("1st", "_1st")]
)
def test_label_names_are_made_valid_for_alertmanager(name: str, valid: str) -> None:
    assert label_name(name) == valid


# --- file -------------------------------------------------------------------------------------


def test_the_file_receiver_appends_one_json_line_per_notification(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    sender = FileSender("local", FileReceiver(type="file", path=str(path)))
    sender.send(make_notification())
    sender.send(make_notification(RESOLVED))
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(m["version"], m["status"]) for m in lines] == [("4", "firing"), ("4", "resolved")]


def test_a_file_in_a_missing_directory_fails_permanently(tmp_path: Path) -> None:
    config = FileReceiver(type="file", path=str(tmp_path / "missing" / "alerts.jsonl"))
    failed = failure_of(FileSender("local", config))
    assert failed.permanent
