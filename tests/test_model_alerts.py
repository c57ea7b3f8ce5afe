"""A model's alerts as each receiver gets them: the alert lifecycle turns the model `fraud`'s
results (judged from `tests.test_models.observation`) into events, and the senders deliver them
to real HTTP servers on loopback that enforce each receiver's contract (tests/receivers.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType

import httpx
import pytest

from alerts.config import AlertmanagerReceiver, PagerDutyReceiver, SlackReceiver, WebhookReceiver
from alerts.lifecycle import AlertingConfig, advance
from alerts.model import AlertEvent, Notification
from alerts.senders import new_client
from alerts.senders.alertmanager import AlertmanagerSender
from alerts.senders.pagerduty import PagerDutySender, dedup_key
from alerts.senders.slack import SlackSender, slack_message
from alerts.senders.webhook import WebhookSender
from checks.observation import ModelObservation, ProbeFailure
from checks.result import RunResult
from tests.receivers import (
    REPORT,
    ROUTING_KEY,
    SLACK_PATH,
    T0,
    WEBHOOK_PATH,
    PagerDuty,
    alertmanager_contract,
    serving,
    slack_contract,
    webhook_contract,
)
from tests.test_models import observation, results


def events(
    tmp_path: Path, observed: ModelObservation | ProbeFailure | None = None, index: int = 0
) -> dict[str, AlertEvent]:
    """The events of the `index`-th run of the model's checks (a fresh lifecycle: the first
    failing run fires), by check id (`probe` for the probe's alert)."""
    judged = results(tmp_path, observation() if observed is None else observed)
    at = T0 + index * timedelta(minutes=5)
    run = RunResult(f"run-{index}", at, at, at, tuple(judged.values()))
    step = advance({}, run, AlertingConfig(), at, REPORT)
    return {event.labels.get("check", "probe"): event for event in step.events}


def notification(*alerts: AlertEvent) -> Notification:
    return Notification(
        receiver="risk",
        group_key='{}:{model="fraud"}',
        group_labels={"model": "fraud"},
        alerts=alerts,
        created_at=T0 + timedelta(minutes=1),
        external_url="https://featmon.example/",
    )


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with new_client() as made:
        yield made


def test_a_models_alerts_carry_the_model_and_its_owner_and_no_feature_view(
    tmp_path: Path,
) -> None:
    """Coverage, freshness over values and the null rate of pairs:txns fail (P1 and P3)."""
    fired = events(tmp_path)
    assert sorted(fired) == ["fraud.coverage", "fraud.freshness", "fraud.null_rate.pairs.txns"]
    for event in fired.values():
        assert (event.labels["model"], event.labels["owner"]) == ("fraud", "risk-team")
        assert "feature_view" not in event.labels
    assert fired["fraud.null_rate.pairs.txns"].labels["feature"] == "pairs:txns"


def test_slack_names_the_model_in_the_title_the_facts_and_each_alert(
    tmp_path: Path, client: httpx.Client
) -> None:
    fired = events(tmp_path)
    with serving(slack_contract) as server:
        settings = SlackReceiver.model_validate(
            {"type": "slack", "webhook_url": server.url + SLACK_PATH, "max_per_second": 100}
        )
        SlackSender("risk-slack", settings, client).send(notification(*fired.values()))
    assert [reply.status for reply in server.replies] == [200]
    header, facts, _, *sections, _ = server.bodies()[0]["blocks"]
    assert header["text"]["text"] == ":red_circle: FIRING · P1 · model fraud"
    fields = [field["text"] for field in facts["fields"]]
    assert {"*Model*\nfraud", "*Owner*\nrisk-team", "*Store*\nlake"} <= set(fields)
    assert not [field for field in fields if field.startswith("*Feature view*")]
    texts = [section["text"]["text"] for section in sections]
    assert texts[0].startswith(":red_circle: *fraud.coverage on model fraud (lake)* · P1")
    assert "*fraud.null_rate.pairs.txns on model fraud, pairs:txns (lake)* · P3" in texts[2]


def test_pagerduty_gets_the_model_as_component_and_one_incident_per_alert(
    tmp_path: Path, client: httpx.Client
) -> None:
    """component `model:fraud`, group the store of its requests, the summary naming the
    model; the next run's same alert de-duplicates into the same incident."""
    first = events(tmp_path)["fraud.coverage"]
    service = PagerDuty()
    with serving(service) as server:
        config = PagerDutyReceiver(
            type="pagerduty", routing_key=ROUTING_KEY, url=server.url + "/v2/enqueue"
        )
        sender = PagerDutySender("oncall", config, client)
        sender.send(notification(first))
        again = events(tmp_path, index=1)["fraud.coverage"]
        sender.send(notification(again))
    assert [reply.status for reply in server.replies] == [202, 202]
    event = server.bodies()[0]
    payload = event["payload"]
    assert (payload["component"], payload["group"], payload["class"], payload["source"]) == (
        "model:fraud", "lake", "coverage", "lake/model:fraud"
    )  # fmt: skip
    assert payload["summary"] == (
        "fraud.coverage fails for model fraud on lake: 93.0% against min 95.0% (warn 97.0%)"
    )
    details = payload["custom_details"]["labels"]
    assert (details["model"], details["owner"]) == ("fraud", "risk-team")
    assert event["dedup_key"] == dedup_key(first) == dedup_key(again)
    assert service.opened == 1


def test_the_webhook_and_alertmanager_get_model_and_owner_labels(
    tmp_path: Path, client: httpx.Client
) -> None:
    coverage = events(tmp_path)["fraud.coverage"]
    with serving(webhook_contract()) as hook, serving(alertmanager_contract) as peer:
        url = hook.url + WEBHOOK_PATH
        WebhookSender("hook", WebhookReceiver(type="webhook", url=url), client).send(
            notification(coverage)
        )
        settings = AlertmanagerReceiver(type="alertmanager", peers=(peer.url,))
        AlertmanagerSender("am", settings, client).send(notification(coverage))
    assert [reply.status for reply in (*hook.replies, *peer.replies)] == [200, 200]
    message = hook.bodies()[0]
    assert (message["commonLabels"]["model"], message["commonLabels"]["owner"]) == (
        "fraud",
        "risk-team",
    )
    (pushed,) = peer.bodies()[0]
    for labels in (message["alerts"][0]["labels"], pushed["labels"]):
        assert (labels["model"], labels["owner"], labels["check"]) == (
            "fraud",
            "risk-team",
            "fraud.coverage",
        )
        assert "feature_view" not in labels


def test_a_model_that_cannot_be_measured_pages_its_owner_once(
    tmp_path: Path, client: httpx.Client
) -> None:
    """Every check in error: one probe alert naming the model, with its owner, and no alert
    per check (the probe's inhibits them)."""
    failed = ProbeFailure("lake", "model:fraud", "store 'lake': no file logs/fraud")
    fired = events(tmp_path, failed)
    assert list(fired) == ["probe"]
    probe = fired["probe"]
    assert probe.labels == {
        "alertname": "featmon_probe_error",
        "store": "lake",
        "model": "fraud",
        "owner": "risk-team",
        "severity": "P1",
    }
    assert probe.annotations["summary"] == (
        "featmon cannot measure model fraud on lake: store 'lake': no file logs/fraud "
        "(7 checks in error)"
    )
    with serving(webhook_contract()) as hook:
        url = hook.url + WEBHOOK_PATH
        WebhookSender("hook", WebhookReceiver(type="webhook", url=url), client).send(
            notification(probe)
        )
    assert hook.bodies()[0]["alerts"][0]["labels"]["owner"] == "risk-team"


def test_a_models_name_and_owner_are_never_slack_markup(tmp_path: Path) -> None:
    """A name or owner that reads as a Slack mention or link is escaped in the facts and in
    each alert's line (check files refuse such names; the message must not trust that)."""
    coverage = events(tmp_path)["fraud.coverage"]
    labels = {**coverage.labels, "model": "<!channel>", "owner": "<https://x|@here>"}
    hostile = replace(coverage, labels=MappingProxyType(labels), annotations=MappingProxyType({}))
    message = slack_message(notification(hostile), [hostile])
    fields = [field["text"] for field in message["blocks"][1]["fields"]]
    assert "*Model*\n&lt;!channel&gt;" in fields
    assert "*Owner*\n&lt;https://x|@here&gt;" in fields
    assert "on model &lt;!channel&gt; (lake)" in message["blocks"][3]["text"]["text"]
    assert "<!channel>" not in json.dumps(message["blocks"][1:])
