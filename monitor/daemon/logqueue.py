"""Logging off the daemon's worker threads: while `queued_logging()` is active, the root
logger's handlers run on one thread of their own, fed by a queue.

The daemon logs a few lines per run from each of its workers. Through a plain handler every
line takes the handler's lock and writes to the stream while holding it; a worker whose write
waits (on the stream, or on the interpreter lock it released for the write) keeps every other
worker that logs waiting on the handler's lock too. Under load, that was a tenth of the
workers' time. Through the queue a worker only formats the message and enqueues the record.

The records stay in the process, so nothing is pickled: the message is resolved from its
arguments at once (they may change afterwards), and the exception information is kept for the
handlers' formatters (`--log-format json` puts it in a field of its own).
"""

from __future__ import annotations

import contextlib
import logging
import queue
from collections.abc import Iterator
from logging.handlers import QueueHandler, QueueListener


class _InProcessQueueHandler(QueueHandler):
    """Enqueues the record with its message resolved and everything else as it was."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record.msg = record.getMessage()
        record.args = None
        return record


@contextlib.contextmanager
def queued_logging(logger: logging.Logger | None = None) -> Iterator[None]:
    """Move the handlers of `logger` (the root logger) behind a queue for the `with` block;
    at its end every queued record is handled and the handlers are put back."""
    target = logger or logging.getLogger()
    handlers = list(target.handlers)
    if not handlers:
        yield
        return
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = QueueListener(records, *handlers, respect_handler_level=True)
    front = _InProcessQueueHandler(records)
    listener.start()
    target.handlers[:] = [front]
    try:
        yield
    finally:
        target.handlers[:] = handlers
        listener.stop()  # handles what is still queued, then ends its thread
