"""A line of progress on stderr: rewritten in place on a terminal, printed sparingly otherwise."""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import TextIO


class StatusLine:
    """Show a changing line of progress on a stream.

    On a terminal the line is rewritten in place with ``\\r`` and erased by ``clear``;
    elsewhere (a log file, CI) a line is printed when it changes, at most every
    ``interval`` seconds, so that logs stay short.
    """

    def __init__(self, stream: TextIO | None = None, interval: float = 5.0) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.tty = self.stream.isatty()
        self._shown = ""
        self._printed_at = float("-inf")

    def update(self, text: str, force: bool = False) -> None:
        """Show ``text`` (on a non-terminal: if it changed and enough time passed, or ``force``)."""
        if self.tty:
            self.stream.write("\r\x1b[K" + text)
            self.stream.flush()
            self._shown = text
            return
        now = time.monotonic()
        if text != self._shown and (force or now - self._printed_at >= self.interval):
            self.stream.write(text + "\n")
            self.stream.flush()
            self._shown, self._printed_at = text, now

    def clear(self) -> None:
        """Erase the line on a terminal, so that what comes next starts clean."""
        if self.tty and self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = ""


class Spinner:
    """Say what is being waited for, with the seconds elapsed, until the block ends.

    On a terminal the line shows at once and is erased at the end. Elsewhere one line is
    printed only if the wait passes ``quiet_s``, so quick steps leave a script's stderr clean.

    Example::

        with Spinner("deploying sample_apis/testbench"):
            client.deploy(...)
    """

    def __init__(self, message: str, stream: TextIO | None = None, quiet_s: float = 2.0) -> None:
        self.line = StatusLine(stream)
        self.message = message
        self.quiet_s = quiet_s
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._tick, daemon=True)

    def __enter__(self) -> Spinner:
        if self.line.tty:
            self.line.update(f"{self.message} ...")
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._done.set()
        self._thread.join()
        self.line.clear()

    def _tick(self) -> None:
        if not self.line.tty:
            if not self._done.wait(self.quiet_s):
                self.line.update(f"{self.message} ...", force=True)
            return
        started = time.monotonic()
        while not self._done.wait(0.5):
            self.line.update(f"{self.message} ... {time.monotonic() - started:.0f}s")
