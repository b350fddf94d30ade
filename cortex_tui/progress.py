"""A tqdm-style progress bar for a job's batches, on a terminal or in a notebook.

Standard library only. On a terminal (or in a Jupyter notebook, whose output honours
``\\r``) the bar is redrawn in place; on anything else it prints a line when asked to show
progress there, at most every ``interval`` seconds, so that logs stay short.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

_BLOCKS = " ▏▎▍▌▋▊▉█"


def live_output(stream: TextIO) -> bool:
    """Return whether ``stream`` redraws a line in place: a terminal, or a notebook's output."""
    return stream.isatty() or "ipykernel" in sys.modules


class ProgressBar:
    """``label: 45%|████▌     | 9/20 batches [00:04<00:05, 2.10 batches/s, 1 failed]``.

    Args:
        label: What the bar is of (the job).
        stream: Where to draw it (default: stderr).
        interval: Seconds between lines on a stream that cannot redraw.
    """

    def __init__(
        self, label: str, stream: TextIO | None = None, width: int = 20, interval: float = 5.0
    ) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.interval = interval
        self.live = live_output(self.stream)
        encoding = (getattr(self.stream, "encoding", None) or "").lower().replace("-", "")
        self.blocks = _BLOCKS if encoding in ("utf8", "") else " #"
        self._started = time.monotonic()
        self._base: int | None = None  # batches done when the bar started: the rate is ours
        self._shown = ""
        self._printed_at = float("-inf")

    def update(self, done: int, total: int, failed: int = 0, note: str = "") -> None:
        """Show ``done`` of ``total`` batches (``note`` instead of rates, e.g. ``enqueuing``)."""
        self.show(self.render(done, total, failed, note))

    def show(self, text: str) -> None:
        """Show ``text`` as the bar's line (where it cannot be redrawn: now and then)."""
        if self.live:
            pad = " " * max(0, len(self._shown) - len(text))
            self.stream.write("\r" + text + pad)
            self.stream.flush()
            self._shown = text
            return
        now = time.monotonic()
        if text != self._shown and now - self._printed_at >= self.interval:
            self.stream.write(text + "\n")
            self.stream.flush()
            self._shown, self._printed_at = text, now

    def close(self, last: str | None = None) -> None:
        """End the bar's line, with ``last`` as its final text if given."""
        if last is not None:
            if self.live:
                last = "\r" + last + " " * max(0, len(self._shown) - len(last))
            self.stream.write(last + "\n")
        elif self.live and self._shown:
            self.stream.write("\n")
        self._shown = ""
        self.stream.flush()

    def render(self, done: int, total: int, failed: int = 0, note: str = "") -> str:
        """Return the bar's text for these counts."""
        elapsed = time.monotonic() - self._started
        fraction = min(1.0, done / total) if total > 0 else 0.0
        bar = self._bar(fraction)
        counts = f"{done}/{total} batches"
        failures = f", {failed} failed" if failed else ""
        if note:
            return f"{self.label}: {fraction:4.0%}|{bar}| {counts} [{note}{failures}]"
        self._base = done if self._base is None else self._base
        rate = (done - self._base) / elapsed if elapsed > 0 else 0.0
        left = (total - done) / rate if rate > 0 else None
        timing = f"{_clock(elapsed)}<{'?' if left is None else _clock(left)}, {rate:.2f} batches/s"
        return f"{self.label}: {fraction:4.0%}|{bar}| {counts} [{timing}{failures}]"

    def _bar(self, fraction: float) -> str:
        steps = len(self.blocks) - 1
        eighths = round(fraction * self.width * steps)
        full, part = divmod(eighths, steps)
        text = self.blocks[-1] * full + (self.blocks[part] if part else "")
        return text.ljust(self.width)[: self.width]


def _clock(seconds: float) -> str:
    """Return ``mm:ss`` (``h:mm:ss`` past an hour)."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"
