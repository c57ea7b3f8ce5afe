"""`Sidecar`: the HTTP server, uvicorn in a background thread with a clean `start()`/`stop()`.

The listening socket is bound by `start()` in the caller's thread, so an address in use is an
exception there (`ListenError`), not a log line in a thread; port 0 picks a free port, which
`address` then tells. uvicorn's signal handlers stay off (it runs outside the main thread);
the daemon owns signals and calls `stop()`.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

import uvicorn
from starlette.types import ASGIApp

from monitor.config import parse_listen
from monitor.errors import MonitorError

log = logging.getLogger(__name__)


class _UvicornLines(logging.Filter):
    """uvicorn logs its start and stop at INFO under the name `uvicorn.error`, which reads as an
    error in every log search. Those lines become DEBUG lines (dropped unless the log is at
    debug); its warnings and errors keep their level. All of them are named `uvicorn`."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.name = "uvicorn"
        if record.levelno >= logging.WARNING:
            return True
        if not log.isEnabledFor(logging.DEBUG):
            return False
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


def _quiet_uvicorn() -> None:
    """Put `_UvicornLines` on uvicorn's logger, once."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _UvicornLines) for f in logger.filters):
        logger.addFilter(_UvicornLines())


DEFAULT_LISTEN = "127.0.0.1:9108"


class ListenError(MonitorError):
    """The sidecar could not listen on its address (in use, not permitted, not local)."""

    def __init__(self, listen: str, reason: str) -> None:
        self.listen = listen
        self.reason = reason
        super().__init__(f"the HTTP sidecar cannot listen on {listen}: {reason}")


class Sidecar:
    """Serves `app` on `listen` (default 127.0.0.1:9108) from a daemon thread."""

    def __init__(self, app: ASGIApp, listen: str = DEFAULT_LISTEN) -> None:
        self._app = app
        self._listen = listen
        self._host, self._port = parse_listen(listen)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The host and port listened on (the real port when config asked for 0)."""
        if self._socket is None:
            raise RuntimeError("the sidecar is not started")
        host, port = self._socket.getsockname()[:2]
        return str(host), int(port)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 10.0) -> None:
        """Bind, start serving, and return once the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError("the sidecar is already started")
        sock = self._bind()
        _quiet_uvicorn()
        config = uvicorn.Config(
            self._app,
            http="h11",
            ws="none",
            lifespan="off",
            loop="asyncio",
            log_config=None,  # the daemon configures logging
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=5,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="featmon-http", daemon=True
        )
        self._server, self._thread, self._socket = server, thread, sock
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ListenError(self._listen, "the server did not start (see the log)")
            time.sleep(0.01)
        host, port = self.address
        log.info("serving http://%s:%d: /metrics, /reports/, /readyz", host, port)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, let requests in flight finish (5 s at most), close the socket.
        Safe to call twice, or before `start()`."""
        server, thread, sock = self._server, self._thread, self._socket
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.error("HTTP sidecar did not stop within %.0f s", timeout)
        if sock is not None:
            sock.close()
        self._server = self._thread = self._socket = None
        if server is not None:
            log.info("HTTP sidecar stopped")

    def __enter__(self) -> Sidecar:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _bind(self) -> socket.socket:
        try:
            infos = socket.getaddrinfo(
                self._host, self._port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
        except socket.gaierror as exc:
            raise ListenError(self._listen, f"unknown host ({exc.strerror})") from exc
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(128)
        except OSError as exc:
            sock.close()
            raise ListenError(self._listen, exc.strerror or str(exc)) from exc
        sock.set_inheritable(True)
        return sock
