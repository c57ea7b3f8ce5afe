"""Debian's chromium, headless, opens a page served from another origin (127.0.0.2, another
site; and another port of 127.0.0.1, the same site) whose script and form try to mute every
alert on a sidecar with no token (the default): a `text/plain` fetch in `no-cors` mode, a JSON
fetch, and a `text/plain` form POST. The page reports what its browser saw; the sidecar refused
what reached it, and its silences list, read through the API afterwards, is still empty."""

from __future__ import annotations

import html
import json
import os
import signal
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from monitor.state import StateStore
from tests.sidecar import serve
from tests.test_browser import chromium

pytestmark = pytest.mark.slow

MUTE_ALL = {
    "matchers": ['severity=~".+"'],
    "ends_at": "2099-01-01T00:00:00Z",
    "created_by": "page@evil.example",
    "comment": "muted",
}
# A text/plain form posts `name=value\r\n`: a name that is the silence up to an open string,
# closed by the value, is a JSON body that a server reading JSON whatever the type accepts.
FORM_NAME = (
    json.dumps({k: v for k, v in MUTE_ALL.items() if k != "comment"})[:-1] + ', "comment": "'
)
FORM_VALUE = '"}'

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>cute cats</title></head><body>
<iframe name="sink" id="sink"></iframe>
<form id="f" method="POST" action="{target}" enctype="text/plain" target="sink">
<input type="hidden" name="{name}" value="{value}"></form>
<script>
const target = {target_js};
const body = {body_js};
const results = {{}};
async function attempt(name, request) {{
  try {{
    const response = await request();
    results[name] = response.type + ":" + response.status;
  }} catch (error) {{
    results[name] = "error:" + error.name;
  }}
}}
(async () => {{
  await attempt("no_cors_text", () => fetch(target, {{
    method: "POST", mode: "no-cors", headers: {{"Content-Type": "text/plain"}}, body}}));
  await attempt("json", () => fetch(target, {{
    method: "POST", headers: {{"Content-Type": "application/json"}}, body}}));
  const sink = document.getElementById("sink");
  const loaded = new Promise((done) => sink.addEventListener("load", done, {{once: true}}));
  document.getElementById("f").submit();
  await Promise.race([loaded, new Promise((done) => setTimeout(done, 10000))]);
  results.form = "submitted";
  await fetch("/done", {{method: "POST", body: JSON.stringify(results)}});
}})();
</script></body></html>
"""


class Attacker:
    """The other origin: serves the page at / and records what the page reports at /done."""

    def __init__(self, host: str, page: str) -> None:
        self.page = page.encode("utf-8")
        self.report: dict[str, str] | None = None
        self.reported = threading.Event()
        self.server = ThreadingHTTPServer((host, 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        attacker = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(attacker.page)))
                self.end_headers()
                self.wfile.write(attacker.page)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                attacker.report = json.loads(self.rfile.read(length))
                attacker.reported.set()
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

        return Handler

    def __enter__(self) -> Attacker:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def open_page(url: str, profile: Path, attacker: Attacker) -> None:
    """Chromium headless on `url` until the page reports (at most 90 s), then stopped."""
    browser = subprocess.Popen(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            url,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, stopped as one below
    )
    try:
        attacker.reported.wait(90)
    finally:
        os.killpg(browser.pid, signal.SIGTERM)
        try:
            browser.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(browser.pid, signal.SIGKILL)
            browser.wait(20)


@pytest.mark.parametrize("attacker_host", ["127.0.0.2", "127.0.0.1"])
def test_a_page_on_another_origin_cannot_create_a_silence(
    state: StateStore, tmp_path: Path, caplog: pytest.LogCaptureFixture, attacker_host: str
) -> None:
    """From another site (127.0.0.2) or another port of the same host, none of the three
    attempts creates a silence: the two that reach the sidecar are refused by it, and the JSON
    fetch never leaves the browser (its CORS preflight is not granted)."""
    caplog.set_level("INFO", logger="monitor.http.guard")
    with serve(state) as base:
        target = f"{base}/api/v1/silences"
        page = PAGE.format(
            target=html.escape(target),
            name=html.escape(FORM_NAME),
            value=html.escape(FORM_VALUE),
            target_js=json.dumps(target),
            body_js=json.dumps(json.dumps(MUTE_ALL)),
        )
        with Attacker(attacker_host, page) as attacker:
            open_page(attacker.url, tmp_path / "profile", attacker)
        assert attacker.report is not None, "the page did not run to its end"
        listed = httpx.get(f"{base}/api/v1/silences", params={"all": "1"}, timeout=10)
    assert listed.status_code == 200
    assert listed.json()["silences"] == []
    assert attacker.report == {
        "no_cors_text": "opaque:0",  # sent; its answer is hidden from the page
        "json": "error:TypeError",  # blocked by the browser: no CORS grant
        "form": "submitted",
    }
    refused = [r.getMessage() for r in caplog.records if r.name == "monitor.http.guard"]
    posts = [m for m in refused if m.startswith("refused POST /api/v1/silences: 403")]
    assert len(posts) == 2, refused  # the no-cors fetch and the form: another Origin
    assert all("Origin" in m or "Sec-Fetch-Site" in m for m in posts)
