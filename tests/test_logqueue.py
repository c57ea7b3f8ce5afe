"""The daemon's log handlers behind a queue: what workers log reaches the handlers whole."""

from __future__ import annotations

import logging
import threading

from monitor.daemon.logqueue import queued_logging


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.threads: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.threads.add(threading.current_thread().name)


def logger_with(handler: logging.Handler, name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def test_records_from_workers_reach_the_handler_on_another_thread() -> None:
    """Every record of every worker is handled, on a thread that is not the worker's, with its
    message resolved when it was logged."""
    kept = Kept()
    logger = logger_with(kept, "featmon.test.queue")
    values = [1]

    def work(index: int) -> None:
        for _ in range(50):
            logger.info("worker %d saw %s", index, values)

    with queued_logging(logger):
        workers = [threading.Thread(target=work, args=(k,), name=f"w{k}") for k in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        values.append(2)  # after logging: the messages keep what they said
    assert len(kept.records) == 200
    assert {r.getMessage() for r in kept.records} == {f"worker {k} saw [1]" for k in range(4)}
    assert not kept.threads & {f"w{k}" for k in range(4)}


def test_exceptions_keep_their_traceback_for_the_formatter() -> None:
    """A logged exception arrives with its exc_info, so a formatter can show the traceback."""
    kept = Kept()
    logger = logger_with(kept, "featmon.test.queue.exc")
    with queued_logging(logger):
        try:
            int("boom")
        except ValueError:
            logger.exception("run failed")
    (record,) = kept.records
    assert record.exc_info is not None
    assert "ValueError: invalid literal" in logging.Formatter().format(record)


def test_the_handlers_are_put_back_afterwards() -> None:
    """After the block the logger's own handlers handle records again, on the caller's thread."""
    kept = Kept()
    logger = logger_with(kept, "featmon.test.queue.back")
    with queued_logging(logger):
        assert logger.handlers != [kept]
    assert logger.handlers == [kept]
    logger.info("direct")
    assert kept.threads == {threading.current_thread().name}
