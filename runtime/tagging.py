"""Tag every line a worker writes with the time, the worker and the current batch."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO


def timestamp() -> str:
    """Return the current UTC time as the log lines' fixed-width prefix."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class TaggedWriter(io.TextIOBase):
    """A text stream that prefixes each complete line and writes it through."""

    def __init__(self, target: TextIO, worker: str, batch: Callable[[], int | None]) -> None:
        self._target = target
        self._worker = worker
        self._batch = batch
        self._pending = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        """Return True: this is an output stream."""
        return True

    def write(self, text: str) -> int:
        """Buffer ``text`` and emit every complete line, tagged."""
        with self._lock:
            self._pending += text
            *lines, self._pending = self._pending.split("\n")
            for line in lines:
                self._target.write(self.tag(line) + "\n")
            if lines:
                self._target.flush()
        return len(text)

    def tag(self, line: str) -> str:
        """Return ``line`` with its prefix."""
        batch = self._batch()
        where = f"[{self._worker}]" if batch is None else f"[{self._worker}] [batch {batch}]"
        return f"{timestamp()} {where} {line}"

    def flush(self) -> None:
        """Write out a trailing partial line."""
        with self._lock:
            if self._pending:
                self._target.write(self.tag(self._pending) + "\n")
                self._pending = ""
            self._target.flush()

    def isatty(self) -> bool:
        """Return False: logs go to files."""
        return False
