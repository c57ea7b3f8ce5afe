"""A file of JSON lines: one line per notification, in the webhook payload's shape (version 4),
appended, flushed and fsynced before `send` returns. For local use and tests.

A line is written whole to a file opened for appending (O_APPEND: each write lands at the
end), so concurrent senders, threads or processes, never interleave within a line. An error that the same write cannot
outlive (no directory, no permission, a read-only file system) is permanent; the rest (a full
disk, an I/O error) are retryable.
"""

from __future__ import annotations

import errno
import json
import logging
import os

from alerts.abc import Sender
from alerts.config import FileReceiver
from alerts.errors import DeliveryFailed
from alerts.model import Notification
from alerts.senders.content import deliverable, webhook_message

log = logging.getLogger(__name__)

PERMANENT_ERRNOS = frozenset(
    {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EACCES, errno.EPERM, errno.EROFS}
)


class FileSender(Sender):
    def __init__(self, name: str, settings: FileReceiver) -> None:
        self.name = name
        self._path = settings.path

    def __repr__(self) -> str:
        return f"FileSender(name={self.name!r}, path={self._path!r})"

    def send(self, notification: Notification) -> None:
        alerts = deliverable(notification.alerts)
        if not alerts:
            return
        line = json.dumps(webhook_message(notification, alerts), ensure_ascii=False) + "\n"
        try:
            _append(self._path, line.encode("utf-8"))
        except OSError as exc:
            permanent = exc.errno in PERMANENT_ERRNOS
            reason = f"cannot append to {self._path}: {exc.strerror or type(exc).__name__}"
            raise DeliveryFailed(self.name, reason, permanent=permanent) from exc
        log.info("receiver %r: %d alerts appended to %s", self.name, len(alerts), self._path)


def _append(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
