"""Report links in alerts open for the people paged: with `reports.link_key` the link a Slack
message carries is signed for its one run and expires, so it opens that report without the
sidecar's bearer token, while a changed run id, a changed signature or a past expiry is 403
and every other endpoint still asks for the token."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from alerts.config import SlackReceiver
from alerts.routing import RootRouteConfig
from checks.errors import ConfigError
from checks.source import Document, validate
from monitor.app import build_app
from monitor.cli.main import main
from monitor.config import Config, HttpConfig, ReportsConfig
from monitor.daemon.notify import AlertRuntime
from monitor.demo import example_config
from monitor.http import DaemonSidecar
from monitor.http.links import ReportLinks
from monitor.loader import load
from monitor.metrics import Exposition
from monitor.state import StateStore
from tests.receivers import SLACK_PATH, LoopbackReceiver, serving, slack_contract
from tests.sidecar import Demo, serve
from tests.test_http import FakeApp, FakeDaemon

TOKEN = "http-links-token"
KEY = "k3y-for-signing-report-links-0123456789abcdef"
LINKS = ReportLinks(KEY.encode(), timedelta(days=30))


@pytest.fixture(scope="module")
def state(demo: Demo) -> Iterator[StateStore]:
    with StateStore(demo.state_url) as store:
        yield store


@pytest.fixture(scope="module")
def base(state: StateStore) -> Iterator[str]:
    with serve(state, token=TOKEN, links=LINKS) as url:
        yield url


@pytest.fixture(scope="module")
def slack() -> Iterator[LoopbackReceiver]:
    with serving(slack_contract) as server:
        yield server


def notified_link(demo: Demo, base: str, slack: LoopbackReceiver) -> str:
    """Alert on the demo's newest run as the daemon does (AlertRuntime over the demo's config
    with a Slack receiver, reports.base_url at the sidecar and a link key), and return the
    report link of the message Slack received."""
    loaded = load(example_config(), {"FEATMON_DEMO_DIR": str(demo.directory)})
    config = loaded.config.model_copy(
        update={
            "receivers": {"team": SlackReceiver(type="slack", webhook_url=slack.url + SLACK_PATH)},
            "route": RootRouteConfig.model_validate({"receiver": "team", "group_wait": "0s"}),
            "reports": loaded.config.reports.model_copy(
                update={"base_url": f"{base}/reports/", "link_key": SecretStr(KEY)}
            ),
        }
    )
    with build_app(dataclasses.replace(loaded, config=config)) as app:
        runtime = AlertRuntime(app, lambda _receiver, _outcome: None)
        runtime.after_run(demo.runs[-1], datetime.now(UTC))
        runtime.start()
        try:
            deadline = time.monotonic() + 30
            while not slack.arrivals and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            runtime.stop()
    assert slack.arrivals, "no notification reached Slack"
    links: list[str] = re.findall(
        r"http://127\.0\.0\.1:\d+/reports/[^\"<>|\s]+", slack.arrivals[0].body.decode()
    )
    assert links, slack.arrivals[0].body.decode()
    return links[0]


@pytest.fixture(scope="module")
def link(demo: Demo, base: str, slack: LoopbackReceiver) -> str:
    return notified_link(demo, base, slack)


def parts(link: str) -> tuple[str, str, str]:
    """(run id, expires, sig) of a signed link."""
    split = urlsplit(link)
    query = parse_qs(split.query)
    return split.path.removeprefix("/reports/"), query["expires"][0], query["sig"][0]


def test_the_link_in_a_slack_alert_opens_its_report_without_the_token(
    link: str, demo: Demo
) -> None:
    """The people paged click the link in the message: 200 and the run's report."""
    run_id = demo.runs[-1].run_id
    assert parts(link)[0] == run_id
    response = httpx.get(link, timeout=10)
    assert response.status_code == 200, response.text
    assert run_id in response.text
    assert "user_stats.coverage@online" in response.text.replace("<wbr>", "")


def test_the_link_expires_after_link_ttl(link: str) -> None:
    """The expiry is the notification's time plus reports.link_ttl (30 days by default)."""
    expires = datetime.fromtimestamp(int(parts(link)[1]), UTC)
    assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=5)


def test_a_link_with_another_run_id_is_403(link: str, demo: Demo) -> None:
    """The signature covers the run id: the same query on another run's report is refused."""
    other = demo.runs[0].run_id
    response = httpx.get(link.replace(demo.runs[-1].run_id, other), timeout=10)
    assert response.status_code == 403
    assert "does not match" in response.text
    assert other not in response.text.replace("does not", "")  # no report was rendered


def test_a_tampered_signature_is_403(link: str) -> None:
    """One changed hex digit of the signature is refused."""
    sig = parts(link)[2]
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    response = httpx.get(link.replace(sig, flipped), timeout=10)
    assert response.status_code == 403
    assert "signature does not match" in response.text


def test_a_later_expiry_under_the_same_signature_is_403(link: str) -> None:
    """The signature covers the expiry: pushing it out breaks the link."""
    _, expires, _ = parts(link)
    response = httpx.get(link.replace(f"expires={expires}", f"expires={int(expires) + 86400}"))
    assert response.status_code == 403


def test_an_expired_link_is_403(base: str, demo: Demo) -> None:
    """A link made 31 days ago with the 30-day lifetime is refused, though correctly signed."""
    run_id = demo.runs[-1].run_id
    made = datetime.now(UTC) - timedelta(days=31)
    old = LINKS.url(f"{base}/reports/", run_id, made)
    response = httpx.get(old, timeout=10)
    assert response.status_code == 403
    assert "expired" in response.text
    fresh = LINKS.url(f"{base}/reports/", run_id, datetime.now(UTC))
    assert httpx.get(fresh, timeout=10).status_code == 200  # the same link made now opens


def test_a_link_signed_with_another_key_is_403(base: str, demo: Demo) -> None:
    """A link only the holder of reports.link_key could make opens; another key's does not."""
    other = ReportLinks(b"another-key-of-enough-length-0123456789", timedelta(days=1))
    url = other.url(f"{base}/reports/", demo.runs[-1].run_id, datetime.now(UTC))
    assert httpx.get(url, timeout=10).status_code == 403


@pytest.mark.parametrize(
    "path",
    ["/reports/", "/api/v1/status", "/api/v1/results", "/api/v1/silences", "/reports/latest"],
)
def test_a_signature_opens_nothing_but_its_report(link: str, base: str, path: str) -> None:
    """The link's query on any other path is 403, and without it the token is still needed."""
    query = urlsplit(link).query
    assert httpx.get(f"{base}{path}?{query}", timeout=10).status_code == 403
    assert httpx.get(f"{base}{path}", timeout=10).status_code == 401


def test_a_report_without_a_signature_still_needs_the_token(link: str) -> None:
    """The report itself, asked for without the signature, is behind the token as before."""
    plain = link.split("?", 1)[0]
    assert httpx.get(plain, timeout=10).status_code == 401
    authorized = httpx.get(plain, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert authorized.status_code == 200


def test_a_repeated_signature_parameter_is_403(link: str) -> None:
    """`sig` twice is ambiguous: refused rather than guessed."""
    _, _, sig = parts(link)
    assert httpx.get(f"{link}&sig={sig}", timeout=10).status_code == 403


# -- the pure signer ------------------------------------------------------------------------------


def test_verify_accepts_what_url_signed_until_it_expires() -> None:
    """The signer alone: good until the expiry, bad at it, bad for another run id."""
    now = datetime(2026, 12, 1, tzinfo=UTC)
    run_id, expires, sig = parts(LINKS.url("https://f.example/reports", "r-1", now))
    assert LINKS.verify(run_id, expires, sig, now) is None
    assert LINKS.verify(run_id, expires, sig, now + timedelta(days=30)) == "the link has expired"
    assert LINKS.verify("r-2", expires, sig, now) == "the signature does not match this report"
    assert (
        LINKS.verify(run_id, "\u00b2", sig, now) == "expected expires to be a time in Unix seconds"
    )


def test_the_key_is_not_in_the_repr() -> None:
    """The key never shows in a log line that prints the signer."""
    assert KEY not in repr(LINKS)


# -- config ---------------------------------------------------------------------------------------


def reports(**fields: object) -> ReportsConfig:
    data = {"stores": {"lake": {"type": "parquet"}}, "checks": "c/*.yaml", "reports": fields}
    return validate(Config, Document("config.yaml", data)).reports


@pytest.mark.parametrize("key", ["", "   ", "short-key"])
def test_a_short_or_blank_link_key_is_refused(key: str) -> None:
    """A guessable key is a located error that does not quote it."""
    with pytest.raises(ConfigError, match=r"reports\.link_key: expected a") as caught:
        reports(link_key=key)
    assert key.strip() == "" or key not in str(caught.value)


@pytest.mark.parametrize("ttl", ["0s", "400d"])
def test_a_link_ttl_out_of_range_is_refused(ttl: str) -> None:
    """A link that never opens, or opens for over a year, is a mistake."""
    with pytest.raises(ConfigError, match=r"reports\.link_ttl: expected a link lifetime"):
        reports(link_ttl=ttl)


def test_the_link_key_and_ttl_are_read_from_config() -> None:
    """reports.link_key and link_ttl make the signer; without a key there is none."""
    read = reports(link_key=KEY, link_ttl="7d", base_url="https://f.example/reports/")
    built = ReportLinks.from_config(read)
    assert built == ReportLinks(KEY.encode(), timedelta(days=7))
    assert ReportLinks.from_config(reports()) is None


def test_validate_warns_when_links_would_need_the_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With a token and a base URL but no link key, `validate` says the links need the token
    (and still exits 0); with the key, it says nothing of it."""
    config = tmp_path / "config.yaml"
    text = example_config().read_text(encoding="utf-8")
    text = text.replace("http:\n", "http:\n  token: ${HTTP_TOKEN}\n", 1)
    text = text.replace("reports:\n", "reports:\n  base_url: https://featmon.example/reports/\n", 1)
    config.write_text(text, encoding="utf-8")
    (tmp_path / "examples").symlink_to(example_config().parent / "examples")
    monkeypatch.setenv("HTTP_TOKEN", TOKEN)
    monkeypatch.setenv("FEATMON_DEMO_DIR", str(tmp_path / "demo"))
    assert main(["validate", "--config", str(config)]) == 0
    assert "set reports.link_key" in capsys.readouterr().err
    config.write_text(
        text.replace("reports:\n", "reports:\n  link_key: ${FEATMON_LINK_KEY}\n", 1), "utf-8"
    )
    monkeypatch.setenv("FEATMON_LINK_KEY", KEY)
    assert main(["validate", "--config", str(config)]) == 0
    assert "link_key" not in capsys.readouterr().err


def test_the_daemon_sidecar_takes_its_token_hosts_and_link_key_from_config(
    state: StateStore, demo: Demo
) -> None:
    """As `featmon run` wires it: http.token, http.allowed_hosts and reports.link_key of the
    configuration reach the sidecar."""
    http = HttpConfig(listen="127.0.0.1:0", token=SecretStr(TOKEN), allowed_hosts=("featmon.svc",))
    links = ReportLinks.from_config(ReportsConfig(link_key=SecretStr(KEY)))
    sidecar = DaemonSidecar(http, Exposition(CollectorRegistry()), links)
    sidecar.start(FakeDaemon(FakeApp(state)))
    try:
        base = f"http://127.0.0.1:{sidecar.address[1]}"
        run_id = demo.runs[-1].run_id
        assert (
            httpx.get(LINKS.url(f"{base}/reports/", run_id, datetime.now(UTC))).status_code == 200
        )
        assert httpx.get(f"{base}/reports/{run_id}").status_code == 401
        assert httpx.get(f"{base}/healthz", headers={"Host": "featmon.svc"}).status_code == 200
        assert httpx.get(f"{base}/healthz", headers={"Host": "other.svc"}).status_code == 421
    finally:
        sidecar.stop()
