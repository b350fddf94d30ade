"""Plain-text rendering: aligned tables, progress bars, short statuses, optional color."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, TextIO

# Re-exported: the CLI's wait and the TUI read it from here.
from cortex_tui.job_status import TERMINAL_STATUSES as TERMINAL_STATUSES

Paint = Callable[[str], str]

_ANSI = {"green": "32", "red": "31", "yellow": "33", "cyan": "36", "dim": "2", "bold": "1"}
_STATUS_COLORS = {
    "status_succeeded": "green",
    "status_running": "cyan",
    "status_enqueuing": "cyan",
    "status_completed_with_failures": "yellow",
    "status_stopped": "yellow",
    "status_timed_out": "yellow",
    "status_unknown": "dim",
}


def use_color(stream: TextIO) -> bool:
    """Return whether to color output on ``stream``: a TTY, and ``NO_COLOR`` unset."""
    return stream.isatty() and not os.environ.get("NO_COLOR")


def colored(text: str, color: str, enabled: bool = True) -> str:
    """Wrap ``text`` in the ANSI code of ``color`` when ``enabled``."""
    if not enabled or not text:
        return text
    return f"\x1b[{_ANSI[color]}m{text}\x1b[0m"


def short_status(status: str | None) -> str:
    """Return a status for people: ``status_timed_out`` -> ``timed out``."""
    if not status:
        return "-"
    return status.removeprefix("status_").replace("_", " ")


def status_color(status: str | None) -> str:
    """Return the color a status is shown in (red for every kind of failure)."""
    return _STATUS_COLORS.get(status or "", "red")


def paint_status(status: str | None, enabled: bool) -> Paint:
    """Return a painter that colors text as ``status`` is colored."""
    color = status_color(status)
    return lambda text: colored(text, color, enabled)


def progress(metrics: dict[str, Any], show_failed: bool = True) -> str:
    """Return a job's finished batches over its total (``finished = succeeded + failed``, as
    everywhere), with how many failed unless a column says it already."""
    succeeded, failed = int(metrics.get("succeeded") or 0), int(metrics.get("failed") or 0)
    text = f"{succeeded + failed}/{int(metrics.get('total') or 0)}"
    return f"{text} ({failed} failed)" if failed and show_failed else text


def progress_bar(done: int, total: int, width: int = 10) -> str:
    """Return a text bar such as ``[#####.....]`` for ``done`` of ``total``."""
    filled = 0 if total <= 0 else min(width, done * width // total)
    return "[" + "#" * filled + "." * (width - filled) + "]"


def truncate(text: str, width: int) -> str:
    """Return ``text`` on one line, cut to ``width`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: max(0, width - 3)] + "..."


def format_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    paint: Sequence[Sequence[Paint | None]] | None = None,
    gap: int = 3,
) -> str:
    """Return rows as left-aligned columns under upper-case headers.

    Args:
        headers: The column titles.
        rows: One list of cell texts per row, as long as ``headers``.
        paint: Optional painters per row and column, applied after alignment so that
            escape codes never skew the widths.
        gap: Spaces between columns.
    """
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = [_line([h.upper() for h in headers], widths, gap, None)]
    for index, row in enumerate(rows):
        lines.append(_line(row, widths, gap, paint[index] if paint else None))
    return "\n".join(lines)


def _line(
    cells: Sequence[str], widths: list[int], gap: int, paint: Sequence[Paint | None] | None
) -> str:
    parts = []
    last = len(cells) - 1
    for column, (cell, width) in enumerate(zip(cells, widths, strict=True)):
        padding = "" if column == last else " " * (width - len(cell) + gap)
        painter = paint[column] if paint else None
        parts.append((painter(cell) if painter else cell) + padding)
    return "".join(parts)


def format_pairs(pairs: Sequence[tuple[str, str]]) -> str:
    """Return ``key: value`` lines with the values aligned."""
    width = max((len(key) for key, _ in pairs), default=0) + 1
    return "\n".join(f"{key + ':':<{width}} {value}" for key, value in pairs)
