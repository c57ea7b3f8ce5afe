"""The HTTP sidecar against the real server on a free loopback port: every endpoint, the
results filters and their 400s, the bearer token, readiness reasons, and report paths."""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client import CollectorRegistry

from alerts.report import render_report
from monitor.config import HttpConfig
from monitor.daemon.recorder import StateHealth
from monitor.daemon.reloads import ReloadOutcome
from monitor.demo import PLANTED
from monitor.http import DaemonSidecar, ListenError, Services, Sidecar, create_app
from monitor.http.app import Readiness
from monitor.metrics import Exposition, Metrics, fixed_state
from monitor.runs.reports import report_history
from monitor.state import StateStore
from tests.sidecar import NOW, Demo, Flags, serve

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def state(demo: Demo) -> Iterator[StateStore]:
    with StateStore(demo.state_url) as store:
        yield store


@pytest.fixture(scope="module")
def base(state: StateStore) -> Iterator[str]:
    with serve(state) as url:
        yield url


@pytest.fixture
def client(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=10) as http:
        yield http


def results(client: httpx.Client, **params: str) -> list[dict[str, object]]:
    response = client.get("/api/v1/results", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == len(body["results"])
    found: list[dict[str, object]] = body["results"]
    return found


# Health, readiness, metrics.


def test_healthz_answers_ok(client: httpx.Client) -> None:
    """/healthz says the process is alive."""
    response = client.get("/healthz")
    assert (response.status_code, response.text) == (200, "ok\n")


def test_readyz_is_ready_when_config_state_and_scheduler_are(client: httpx.Client) -> None:
    """/readyz is 200 with every check ok."""
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"config": "ok", "state": "ok", "scheduler": "ok"},
    }


def test_readyz_names_a_stopped_scheduler_and_an_unloaded_config(state: StateStore) -> None:
    """/readyz is 503 and lists each reason when the scheduler is stopped and no config loaded."""
    flags = Flags(config_loaded=False, scheduler_running=False)
    with serve(state, flags=flags) as url:
        response = httpx.get(f"{url}/readyz")
    assert response.status_code == 503
    assert response.json()["reasons"] == ["configuration not loaded", "scheduler not running"]


def test_readyz_is_not_ready_when_the_state_database_is_unreachable() -> None:
    """A state database that cannot be read makes /readyz 503 with the state reason."""
    missing = StateStore("postgresql+psycopg://featmon@127.0.0.1:1/none")  # nothing listens
    with serve(missing) as url:
        response = httpx.get(f"{url}/readyz")
    missing.close()
    assert response.status_code == 503
    assert response.json()["reasons"] == ["state database unreachable"]
    assert response.json()["checks"]["state"] == "state database unreachable"


def test_readyz_is_not_ready_without_a_state_database() -> None:
    """A daemon running without history is alive but not ready."""
    with serve(None) as url:
        assert httpx.get(f"{url}/healthz").status_code == 200
        response = httpx.get(f"{url}/readyz")
    assert response.status_code == 503
    assert response.json()["reasons"] == ["state database unavailable"]


def test_metrics_are_served_in_the_prometheus_text_format(client: httpx.Client) -> None:
    """/metrics has Prometheus' text content type and the featmon families."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE featmon_check_status gauge" in response.text


def test_metrics_negotiate_openmetrics(client: httpx.Client) -> None:
    """A scraper asking for OpenMetrics gets it, terminated by # EOF."""
    response = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


# The JSON API.


def test_status_gives_each_views_worst_status_and_last_run(client: httpx.Client) -> None:
    """/api/v1/status: per view, the worst latest status and the newest run."""
    body = client.get("/api/v1/status").json()
    assert body["status"] == "fail"
    views = {v["feature_view"]: v for v in body["feature_views"]}
    assert {name: v["status"] for name, v in views.items()} == {
        "merchant_stats": "pass",
        "transaction_features": "fail",
        "user_stats": "fail",
    }
    user = views["user_stats"]
    assert user["last_run"] == {
        "run_id": "20261126T060000Z-demo",
        "scheduled_at": "2026-11-26T06:00:00Z",
    }
    assert user["checks"] == 8
    assert user["counts"] == {"pass": 4, "warn": 1, "fail": 3, "error": 0}


def test_results_without_filters_are_newest_first(client: httpx.Client) -> None:
    """Every result of the newest run comes before those of older runs."""
    found = results(client, limit="100")
    checks = len(PLANTED)
    assert len(found) == 3 * checks
    assert [r["run_id"] for r in found[:checks]] == ["20261126T060000Z-demo"] * checks


def test_results_filter_by_view_check_and_status(client: httpx.Client) -> None:
    """view, check and status narrow the history to the matching results."""
    by_view = results(client, view="transaction_features")
    assert {r["feature_view"] for r in by_view} == {"transaction_features"}
    assert len(by_view) == 9
    by_check = results(client, check="user_stats.coverage@online")
    assert by_check[0]["value"] == pytest.approx(0.91)
    assert len(by_check) == 3
    failed = results(client, status="fail", run_id="20261126T060000Z-demo")
    assert sorted(str(r["check"]) for r in failed) == [
        "checkout_model.coverage",
        "transaction_features.freshness@offline",
        "transaction_features.schema_drift@offline",
        "user_stats.coverage@online",
        "user_stats.freshness@online",
        "user_stats.null_rate.rolling_7d_revenue@online",
    ]


def test_results_since_is_inclusive_and_until_exclusive(client: httpx.Client) -> None:
    """since/until (RFC 3339, any offset) bound the scheduled time: [since, until)."""
    found = results(
        client,
        check="user_stats.coverage@online",
        since="2026-11-26T05:50:00Z",
        until="2026-11-26T07:00:00+01:00",  # 06:00Z: excluded
    )
    assert [r["scheduled_at"] for r in found] == ["2026-11-26T05:50:00Z"]


def test_results_limit_caps_the_rows(client: httpx.Client) -> None:
    """limit returns at most that many results."""
    assert len(results(client, limit="5")) == 5


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"since": "yesterday"}, "since: expected an RFC 3339 time"),
        ({"until": "2026-11-26T06:00:00"}, "until: expected an RFC 3339 time with an offset"),
        ({"since": "2026-13-40T06:00:00Z"}, "since: expected a valid date and time"),
        ({"status": "broken"}, "status: expected one of pass, warn, fail, error, found 'broken'"),
        ({"limit": "0"}, "limit: expected a whole number from 1 to 10000, found '0'"),
        ({"limit": "ten"}, "limit: expected a whole number"),
        ({"feature_view": "x"}, "feature_view: unknown parameter; expected one of view"),
        ({"view": ""}, "view: expected a name, found an empty value"),
        ({"model": ""}, "model: expected a name, found an empty value"),
        (
            {"since": "2026-11-26T06:00:00Z", "until": "2026-11-26T05:00:00Z"},
            "until: expected a time after since",
        ),
    ],
)
def test_bad_results_parameters_are_400_with_a_clear_message(
    client: httpx.Client, params: dict[str, str], message: str
) -> None:
    """A parameter the API cannot use is a 400 naming it, what was expected and found."""
    response = client.get("/api/v1/results", params=params)
    assert response.status_code == 400
    assert response.json()["error"] == "bad request"
    assert response.json()["detail"].startswith(message)


def test_a_repeated_parameter_is_400(client: httpx.Client) -> None:
    """status=fail&status=warn is refused rather than silently reading one of them."""
    response = client.get("/api/v1/results?status=fail&status=warn")
    assert response.status_code == 400
    assert "repeated" in response.json()["detail"]


def test_runs_are_newest_first_limited_and_filtered_by_since(client: httpx.Client) -> None:
    """/api/v1/runs: each recorded run, newest first; a run of several views (`featmon
    check`) names no view and no model."""
    body = client.get("/api/v1/runs").json()
    assert body["count"] == len(body["runs"]) == 3
    newest = body["runs"][0]
    assert (newest["run_id"], newest["feature_view"]) == ("20261126T060000Z-demo", None)
    assert "model" not in newest
    statuses = [r["status"] for r in results(client, run_id=newest["run_id"])]
    assert newest["counts"] == {s: statuses.count(s) for s in ("pass", "warn", "fail", "error")}
    assert newest["status"] == "fail"
    since = client.get("/api/v1/runs", params={"since": "2026-11-26T05:50:00Z"}).json()
    assert [r["scheduled_at"] for r in since["runs"]] == [
        "2026-11-26T06:00:00Z",
        "2026-11-26T05:50:00Z",
    ]
    assert client.get("/api/v1/runs", params={"limit": "1"}).json()["count"] == 1


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"view": "user_stats"}, "view: unknown parameter; expected one of since, limit"),
        ({"limit": "0"}, "limit: expected a whole number from 1 to 10000, found '0'"),
        ({"since": "yesterday"}, "since: expected an RFC 3339 time"),
    ],
)
def test_bad_runs_parameters_are_400_with_a_clear_message(
    client: httpx.Client, params: dict[str, str], message: str
) -> None:
    response = client.get("/api/v1/runs", params=params)
    assert response.status_code == 400
    assert response.json()["detail"].startswith(message)


def test_the_api_is_503_without_a_state_database() -> None:
    """Without history the JSON API says the state database is unavailable."""
    with serve(None) as url:
        status = httpx.get(f"{url}/api/v1/status")
        found = httpx.get(f"{url}/api/v1/results")
        runs = httpx.get(f"{url}/api/v1/runs")
    assert (status.status_code, found.status_code, runs.status_code) == (503, 503, 503)
    assert status.json()["detail"] == "the state database is unavailable"


# The bearer token.


@pytest.fixture(scope="module")
def guarded(state: StateStore) -> Iterator[str]:
    with serve(state, token=TOKEN) as url:
        yield url


@pytest.mark.parametrize("path", ["/api/v1/status", "/api/v1/results", "/reports/"])
def test_without_a_token_the_api_and_reports_are_401(guarded: str, path: str) -> None:
    """No Authorization header: 401 with a Bearer challenge."""
    response = httpx.get(guarded + path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="featmon"'


def test_a_wrong_token_is_401_invalid_token(guarded: str) -> None:
    """A wrong token is refused with error=invalid_token and never echoed."""
    response = httpx.get(f"{guarded}/api/v1/status", headers={"Authorization": "Bearer nope-x"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert "nope-x" not in response.text


def test_the_right_token_is_let_through(guarded: str) -> None:
    """Authorization: Bearer <token> (any case of the scheme) reaches the endpoint."""
    for scheme in ("Bearer", "bearer"):
        response = httpx.get(
            f"{guarded}/api/v1/status", headers={"Authorization": f"{scheme} {TOKEN}"}
        )
        assert response.status_code == 200


@pytest.mark.parametrize("path", ["/metrics", "/healthz", "/readyz"])
def test_metrics_and_health_need_no_token(guarded: str, path: str) -> None:
    """Prometheus and the orchestrator's probes scrape without credentials."""
    assert httpx.get(guarded + path).status_code == 200


# Reports.


def test_the_index_lists_recent_runs_and_every_link_resolves(client: httpx.Client) -> None:
    """Each run of the index links to its report, which is that run's page."""
    page = client.get("/reports/")
    assert page.status_code == 200
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    links = re.findall(r'<a href="([^"]+)"><code>([^<]+)</code></a>', page.text)
    run_links = dict(links)
    assert set(run_links.values()) == {f"{m:%Y%m%dT%H%M%SZ}-demo" for m in _schedules()}
    for href, run_id in run_links.items():
        report = client.get(f"/reports/{href}")
        assert report.status_code == 200
        assert f"<code>{run_id}</code>" in report.text


def test_a_run_page_links_back_to_the_index_and_charts_history(client: httpx.Client) -> None:
    """The newest run's page links to ./ (the index) and draws each check's last three values."""
    page = client.get("/reports/20261126T060000Z-demo").text
    assert '<a href="./" rel="index">All reports</a>' in page
    assert page.count('<svg class="spark"') == len(PLANTED)
    assert 'aria-label="last 3 runs: ' in page


def test_the_front_page_sends_the_browser_to_the_reports(client: httpx.Client) -> None:
    """/ is not a 404: it redirects (temporarily) to the reports index."""
    response = client.get("/")
    assert (response.status_code, response.headers["location"]) == (307, "/reports/")


def test_reports_redirects_to_the_index(client: httpx.Client) -> None:
    """/reports without the slash is a permanent redirect to /reports/."""
    response = client.get("/reports")
    assert (response.status_code, response.headers["location"]) == (308, "/reports/")


def test_latest_is_the_newest_report(client: httpx.Client) -> None:
    """/reports/latest is the report of the newest recorded run."""
    response = client.get("/reports/latest")
    assert response.status_code == 200
    assert response.content == client.get("/reports/20261126T060000Z-demo").content


def test_a_report_is_the_page_of_the_run_as_it_was_measured(
    client: httpx.Client, demo: Demo, state: StateStore
) -> None:
    """The page rendered on demand from the state database is byte for byte the page of the
    run the checks returned (every result read back, charts of the history up to it)."""
    run = demo.runs[-1]
    expected = render_report(run, history=report_history(state, run), index_href="./")
    assert client.get(f"/reports/{run.run_id}").text == expected


def test_a_past_report_charts_the_history_it_had(client: httpx.Client, demo: Demo) -> None:
    """The oldest run's page draws no chart: later runs are not part of its history."""
    page = client.get(f"/reports/{demo.runs[0].run_id}").text
    assert f"<code>{demo.runs[0].run_id}</code>" in page
    assert '<svg class="spark"' not in page


def test_an_unknown_run_is_404(client: httpx.Client) -> None:
    """A well-formed run id that was never recorded is 404."""
    assert client.get("/reports/20000101T000000Z-none").status_code == 404


@pytest.mark.parametrize(
    "raw_path",
    [
        "/reports/..%2f..%2f..%2fetc%2fpasswd",
        "/reports/%2e%2e",
        "/reports/..%5cstate.db",
        "/reports/.hidden",
        "/reports/../state.db",
    ],
)
def test_paths_out_of_the_reports_directory_are_refused(base: str, raw_path: str) -> None:
    """Encoded slashes, dots and backslashes never reach a file outside the reports."""
    with socket.create_connection(_address(base), timeout=10) as conn:
        conn.sendall(
            f"GET {raw_path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    status = int(reply.split(b" ", 2)[1])
    assert status in (400, 404)
    assert b"root:" not in reply
    assert b"SQLite format" not in reply


def test_files_named_like_reports_are_not_served(client: httpx.Client, demo: Demo) -> None:
    """Pages come from recorded runs only: an HTML file beside the state database, or one a
    `featmon check` wrote, is never read by the sidecar."""
    (demo.directory / "reports").mkdir(exist_ok=True)
    for where in (demo.directory, demo.directory / "reports"):
        (where / "escape.html").write_text("secret", encoding="utf-8")
    response = client.get("/reports/escape")
    assert response.status_code == 404
    assert "secret" not in response.text


# The server.


def test_a_port_in_use_is_a_listen_error() -> None:
    """start() raises ListenError in the caller when the address cannot be bound."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        services = Services(
            metrics=lambda _accept: (b"", "text/plain"),
            state=fixed_state(None),
            readiness=Readiness(lambda: True, lambda: True),
        )
        sidecar = Sidecar(create_app(services), f"127.0.0.1:{port}")
        with pytest.raises(ListenError, match=f"cannot listen on 127.0.0.1:{port}"):
            sidecar.start()


def test_stop_closes_the_port() -> None:
    """After stop() nothing listens on the sidecar's port."""
    with serve(None) as url:
        address = _address(url)
        assert httpx.get(f"{url}/healthz").status_code == 200
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=5).close()


@dataclass
class FakeApp:
    state: StateStore | None


@dataclass
class FakeDaemon:
    """The things the sidecar asks of monitor.daemon.service.Daemon, over real state stores."""

    app: FakeApp | None
    ready: bool = True
    in_use: int = 0
    last_reload: ReloadOutcome | None = None

    def state_health(self) -> StateHealth:
        return StateHealth(writable=True)

    @contextlib.contextmanager
    def using(self) -> Iterator[FakeApp]:
        if self.app is None:
            raise RuntimeError("the daemon has not been started")
        self.in_use += 1
        try:
            yield self.app
        finally:
            self.in_use -= 1


def test_the_daemon_sidecar_follows_a_reload_to_the_new_state(state: StateStore) -> None:
    """DaemonSidecar reads the state of the daemon's current configuration at each request,
    and releases it after."""
    daemon = FakeDaemon(FakeApp(None))
    registry = CollectorRegistry()
    Metrics(registry, fixed_state(None))
    sidecar = DaemonSidecar(HttpConfig(listen="127.0.0.1:0", token=None), Exposition(registry))
    sidecar.start(daemon)
    try:
        url = "http://{}:{}".format(*sidecar.address)
        assert httpx.get(f"{url}/api/v1/status").status_code == 503
        daemon.app = FakeApp(state)  # a reload built a new app with a state database
        assert httpx.get(f"{url}/api/v1/status").json()["status"] == "fail"
        assert daemon.in_use == 0
    finally:
        sidecar.stop()


def test_the_daemon_sidecar_is_not_ready_while_the_daemon_stops(state: StateStore) -> None:
    """/readyz follows daemon.ready, and a daemon without configuration is not ready."""
    daemon = FakeDaemon(FakeApp(state), ready=False)
    registry = CollectorRegistry()
    sidecar = DaemonSidecar(HttpConfig(listen="127.0.0.1:0", token=None), Exposition(registry))
    sidecar.start(daemon)
    try:
        url = "http://{}:{}".format(*sidecar.address)
        assert httpx.get(f"{url}/readyz").json()["reasons"] == ["scheduler not running"]
        daemon.app = None
        assert httpx.get(f"{url}/readyz").json()["reasons"] == [
            "configuration not loaded",
            "state database unavailable",
            "scheduler not running",
        ]
    finally:
        sidecar.stop()


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def _schedules() -> list[object]:
    from tests.sidecar import SCHEDULES  # noqa: PLC0415 - the sidecar module starts nothing until a test asks for it

    assert SCHEDULES[-1] == NOW
    return list(SCHEDULES)


def test_readyz_shows_a_failed_reload_when_and_why_and_stays_ready(state: StateStore) -> None:
    """After a failed reload /readyz is still 200 (the last good configuration runs) and says
    the reload failed, when, and each located problem; a later good reload says ok."""
    at = datetime(2026, 11, 26, 6, 0, 5, tzinfo=UTC)
    problem = "checks/c.yaml:6: l5[0]: YAML limit at column 10: expected at most 100000 ..."
    daemon = FakeDaemon(
        FakeApp(state),
        last_reload=ReloadOutcome(False, at, "1 problem in the configuration", (problem,)),
    )
    sidecar = DaemonSidecar(
        HttpConfig(listen="127.0.0.1:0", token=None), Exposition(CollectorRegistry())
    )
    sidecar.start(daemon)
    try:
        url = "http://{}:{}/readyz".format(*sidecar.address)
        failed = httpx.get(url)
        daemon.last_reload = ReloadOutcome(True, at + timedelta(minutes=1))
        fixed = httpx.get(url)
    finally:
        sidecar.stop()
    assert failed.status_code == 200
    assert failed.json() == {
        "status": "ready",
        "checks": {"config": "ok", "state": "ok", "scheduler": "ok"},
        "reload": {
            "status": "failed",
            "at": "2026-11-26T06:00:05Z",
            "error": "1 problem in the configuration",
            "problems": [problem],
        },
    }
    assert (fixed.status_code, fixed.json()["reload"]) == (
        200,
        {"status": "ok", "at": "2026-11-26T06:01:05Z"},
    )
