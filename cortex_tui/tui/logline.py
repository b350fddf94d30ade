"""One line of a job's log, parsed from the server's tagged format.

A line reads ``2026-11-27T04:43:31.906656Z [w0] [batch 0] message``; an untagged line (a
raw traceback a worker printed) belongs to the worker of the line before it.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from rich.text import Text

_TAGGED = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) \[(?P<worker>[^\]\s]+)\]"
    r"(?: \[batch (?P<batch>\d+)\])?(?: (?P<message>.*))?$"
)
_WORKER_STYLES = ("cyan", "magenta", "green", "blue", "yellow", "bright_cyan", "bright_magenta")
ORCHESTRATOR = "orchestrator"


class LogLine(NamedTuple):
    """A parsed log line: its time (``HH:MM:SS.mmm``, UTC), worker, batch and message."""

    time: str
    worker: str
    batch: int | None
    message: str

    def plain(self, timestamps: bool) -> str:
        """Return the line as shown, without styles."""
        batch = f" [batch {self.batch}]" if self.batch is not None else ""
        stamp = f"{self.time} " if timestamps else ""
        return f"{stamp}[{self.worker}]{batch} {self.message}"

    def styled(self, timestamps: bool) -> Text:
        """Return the line as shown: dim time, the worker tag in its colour, the message."""
        text = Text(no_wrap=True, end="")
        if timestamps:
            text.append(f"{self.time} ", style="dim")
        text.append(f"[{self.worker}]", style=worker_style(self.worker))
        if self.batch is not None:
            text.append(f" [batch {self.batch}]", style="dim")
        text.append(f" {self.message}")
        return text


def parse_line(raw: str, previous: LogLine | None) -> LogLine:
    """Return ``raw`` parsed; an untagged line takes the previous line's worker and time."""
    fast = _parse_fixed(raw)
    if fast is not None:
        return fast
    match = _TAGGED.match(raw)
    if match is None:
        if previous is None:
            return LogLine(time=" " * 12, worker=ORCHESTRATOR, batch=None, message=raw)
        return LogLine(previous.time, previous.worker, previous.batch, raw)
    batch = match["batch"]
    return LogLine(
        time=match["ts"][11:23],
        worker=match["worker"],
        batch=int(batch) if batch is not None else None,
        message=match["message"] or "",
    )


def _parse_fixed(raw: str) -> LogLine | None:
    """Parse the runtime's own fixed-width prefix without a regex (logs can be fast)."""
    if len(raw) < 30 or raw[26] != "Z" or raw[10] != "T" or raw[27:29] != " [":
        return None
    end = raw.find("]", 29)
    if end < 0 or " " in raw[29:end]:
        return None
    rest = raw[end + 1 :]
    batch = None
    if rest.startswith(" [batch "):
        close = rest.find("]", 8)
        digits = rest[8:close]
        if close < 0 or not digits.isdigit():
            return None
        batch = int(digits)
        rest = rest[close + 1 :]
    return LogLine(raw[11:23], raw[29:end], batch, rest[1:] if rest[:1] == " " else rest)


def worker_style(worker: str) -> str:
    """Return the colour of a worker's tag; the orchestrator's is bold white."""
    if worker == ORCHESTRATOR:
        return "bold"
    digits = "".join(ch for ch in worker if ch.isdigit())
    index = int(digits) if digits else sum(map(ord, worker))
    return f"bold {_WORKER_STYLES[index % len(_WORKER_STYLES)]}"
