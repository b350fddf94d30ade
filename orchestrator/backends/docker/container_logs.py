"""Copy a container's output into its worker's log file, live, resumable after a restart.

Docker stamps every message with its own nanosecond time; the stamp of the last line
written is kept beside the log (``.w0.cursor``, which the log readers ignore), so a
follower started again after an orchestrator restart asks for ``since`` that time and
skips what it already wrote.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime
from pathlib import Path
from typing import Any


def parse_stamp(stamp: bytes) -> int:
    """Return a Docker RFC 3339 nano timestamp (``2026-01-01T00:00:00.123456789Z``) in ns."""
    text = stamp.decode()
    whole, _, fraction = text.rstrip("Z").partition(".")
    seconds = int(datetime.fromisoformat(whole + "+00:00").timestamp())
    return seconds * 1_000_000_000 + int((fraction or "0").ljust(9, "0")[:9])


class LogFollower:
    """A thread that appends one container's output to ``log_path`` until it stops."""

    def __init__(self, api: Any, container_id: str, log_path: Path) -> None:
        self._api = api
        self._container_id = container_id
        self.log_path = log_path
        self.cursor_path = log_path.with_name(f".{log_path.stem}.cursor")
        self.done = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"logs-{container_id[:12]}", daemon=True
        )

    def start(self) -> LogFollower:
        """Start following; return self."""
        self._thread.start()
        return self

    def join(self, timeout: float) -> bool:
        """Wait for the stream to end; return whether it did."""
        return self.done.wait(timeout)

    def _cursor(self) -> int:
        try:
            return int(self.cursor_path.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _run(self) -> None:
        try:
            self.copy(follow=True)
        except Exception:  # the engine went away or the container is gone: the probe tells
            pass
        finally:
            self.done.set()

    def copy(self, follow: bool) -> None:
        """Append every message after the cursor; with ``follow``, until the container ends."""
        cursor = self._cursor()
        # ``since`` is inclusive and coarser than a nanosecond: ask a little early, then skip.
        since = max(cursor / 1e9 - 0.001, 0.0) if cursor else None
        stream = self._api.logs(
            self._container_id,
            stream=True,
            follow=follow,
            timestamps=True,
            since=since,
        )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        start = cursor
        cursor_fd = os.open(self.cursor_path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            with open(self.log_path, "ab") as log:
                for frame in stream:  # one frame is one message: "STAMP text"
                    stamp, _, text = frame.partition(b" ")
                    try:
                        at: int | None = parse_stamp(stamp)
                    except ValueError:
                        at, text = None, frame
                    if at is not None and start and at <= start:
                        continue  # written before a restart
                    log.write(text)
                    log.flush()
                    if at is not None and at > cursor:
                        cursor = at
                        # Fixed width, in place: one cheap write per line.
                        os.pwrite(cursor_fd, b"%020d" % cursor, 0)
        finally:
            os.close(cursor_fd)
