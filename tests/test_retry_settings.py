"""The retry policy of notifications as config.yaml sets it: globally (`alerting.retry`) and per
receiver (`receivers.<name>.retry`), validated with located errors, and honoured by the outbox
worker against real webhook receivers on loopback."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from alerts.config import Receiver, RetrySettings, WebhookReceiver
from alerts.delivery import Delivery, RetryPolicy
from monitor.loader import load
from monitor.state import OutboxState, StateStore
from tests.receivers import WEBHOOK_PATH, Reply, serving
from tests.test_loader import CONFIG, VIEW, problems, write
from tests.test_outbox import QUICK, enqueue, notifications, wait_until

RECEIVERS = """\
receivers:
  team:
    type: file
    path: alerts.jsonl
    retry: {retry}
alerting:
  retry: {alerting}
"""


def config_with(receiver_retry: str, alerting_retry: str = "{}") -> str:
    return CONFIG + RECEIVERS.format(retry=receiver_retry, alerting=alerting_retry)


def test_retry_settings_default_to_5s_5m_1h(tmp_path: Path) -> None:
    """Without `retry:` anywhere, the policy is the documented base 5s, cap 5m, deadline 1h."""
    loaded = load(
        write(tmp_path, {"config.yaml": CONFIG, "checks/a.yaml": VIEW.format(name="u")}), {}
    )
    retry = loaded.config.alerting.retry
    assert (retry.base, retry.cap, retry.deadline) == (
        timedelta(seconds=5),
        timedelta(minutes=5),
        timedelta(hours=1),
    )


def test_a_receiver_retry_and_the_global_one_are_read_from_config(tmp_path: Path) -> None:
    text = config_with("{base: 1s, cap: 30s, deadline: 10m}", "{base: 10s, deadline: 2h}")
    loaded = load(
        write(tmp_path, {"config.yaml": text, "checks/a.yaml": VIEW.format(name="u")}), {}
    )
    own = loaded.config.receivers["team"].retry
    assert own == RetrySettings(
        base=timedelta(seconds=1), cap=timedelta(seconds=30), deadline=timedelta(minutes=10)
    )
    assert loaded.config.alerting.retry == RetrySettings(
        base=timedelta(seconds=10), deadline=timedelta(hours=2)
    )


@pytest.mark.parametrize(
    ("receiver_retry", "alerting_retry", "expected"),
    [
        (
            "{base: 0s}",
            "{}",
            "config.yaml:10: receivers.team.retry.base: expected a duration above 0s, found 0s",
        ),
        (
            "{base: 1m, cap: 30s}",
            "{}",
            "config.yaml:10: receivers.team.retry.cap: expected cap to be at least base (1m), "
            "found 30s",
        ),
        (
            "{}",
            "{base: 2m, deadline: 1m}",
            "config.yaml:12: alerting.retry.deadline: expected deadline to be at least base "
            "(2m), found 1m",
        ),
        (
            "{base: 1s, jitter: 0.5}",
            "{}",
            "config.yaml:10: receivers.team.retry.jitter: unknown key",
        ),
    ],
    ids=["base-zero", "cap-below-base", "deadline-below-base", "unknown-key"],
)
def test_an_invalid_retry_is_a_located_error(
    tmp_path: Path, receiver_retry: str, alerting_retry: str, expected: str
) -> None:
    found = problems(
        tmp_path,
        {
            "config.yaml": config_with(receiver_retry, alerting_retry),
            "checks/a.yaml": VIEW.format(name="u"),
        },
    )
    assert len(found) == 1
    assert found[0].startswith(expected), found[0]


def test_a_policy_refuses_a_deadline_below_its_base() -> None:
    with pytest.raises(ValueError, match="base <= deadline"):
        RetryPolicy(base=timedelta(seconds=10), deadline=timedelta(seconds=5))


def test_a_receiver_with_its_own_short_deadline_gives_up_while_the_other_retries(
    tmp_path: Path,
) -> None:
    """Both receivers answer 503: `brief` (its own deadline 300 ms) is dead quickly, while
    `patient` (the global retry, deadline 1h) is still retried."""
    quick = {"base": timedelta(milliseconds=50), "cap": timedelta(milliseconds=100)}
    receivers: dict[str, Receiver]
    with (
        StateStore(f"sqlite:///{tmp_path / 'state.db'}") as state,
        serving(lambda _arrival: Reply(503, "down")) as receiver,
    ):
        state.migrate()
        url = SecretStr(receiver.url + WEBHOOK_PATH)
        receivers = {
            "brief": WebhookReceiver(
                type="webhook",
                url=url,
                retry=RetrySettings(**quick, deadline=timedelta(milliseconds=300)),
            ),
            "patient": WebhookReceiver(type="webhook", url=url),
        }
        first, second = notifications(2)
        enqueue(state, replace(first, receiver="brief"), replace(second, receiver="patient"))
        worker = Delivery.from_config(
            state, receivers, QUICK, retry=RetrySettings(**quick, deadline=timedelta(hours=1))
        )
        worker.start()
        try:
            wait_until(lambda: any(r.state is OutboxState.DEAD for r in state.outbox_rows()))
            wait_until(lambda: max(r.attempts for r in state.outbox_rows()) >= 8)
        finally:
            assert worker.stop(timeout=10)
        by_receiver = {r.receiver: r for r in state.outbox_rows()}
    assert by_receiver["brief"].state is OutboxState.DEAD
    assert by_receiver["patient"].state is OutboxState.PENDING
