"""Pure formatting for the TUI: coloured statuses, stacked progress bars, ETAs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text

from cortex_tui.cli.render import TERMINAL_STATUSES, short_status
from cortex_tui.cli.timefmt import format_duration

_STATUS_STYLES = {
    "status_succeeded": "bold green",
    "status_running": "bold cyan",
    "status_enqueuing": "cyan",
    "status_completed_with_failures": "bold yellow",
    "status_stopped": "yellow",
    "status_timed_out": "yellow",
    "status_unknown": "dim",
}
SUCCEEDED_STYLE = "green"
FAILED_STYLE = "red"
IN_FLIGHT_STYLE = "yellow"
REMAINING_STYLE = "grey35"


_COMPACT = {"status_completed_with_failures": "with failures"}


def status_text(status: str | None, compact: bool = False) -> Text:
    """Return a status for people (``timed out``), coloured (red for every failure);
    ``compact`` shortens the longest (for narrow terminals)."""
    if not status:
        return Text("-", style="dim")
    label = _COMPACT.get(status) if compact else None
    return Text(label or short_status(status), style=_STATUS_STYLES.get(status, "bold red"))


def is_terminal(status: str | None) -> bool:
    """Return whether a job in ``status`` has ended for good."""
    return status in TERMINAL_STATUSES


def stacked_bar(succeeded: int, failed: int, total: int, width: int, in_flight: int = 0) -> Text:
    """Return a bar of ``width`` cells: succeeded, failed, in flight, then what remains.

    Each part is rounded down except that a non-zero part gets at least one cell, so a
    single failed batch among thousands stays visible.
    """
    text = Text()
    if width <= 0:
        return text
    if total <= 0:
        return Text("░" * width, style=REMAINING_STYLE)
    parts = [(succeeded, SUCCEEDED_STYLE), (failed, FAILED_STYLE), (in_flight, IN_FLIGHT_STYLE)]
    cells = [0 if n <= 0 else max(1, n * width // total) for n, _ in parts]
    while sum(cells) > width:  # the minimum cells overflowed: take them from the largest
        cells[cells.index(max(cells))] -= 1
    if succeeded + failed >= total:  # done: no rounding gap at the end
        biggest = 0 if cells[0] >= cells[1] else 1
        cells[biggest] += width - sum(cells)
    for count, (_, style) in zip(cells, parts, strict=True):
        text.append("█" * count, style=style)
    text.append("░" * (width - sum(cells)), style=REMAINING_STYLE)
    return text


def legend(parts: Sequence[Text], width: int, gap: int) -> Text:
    """Return ``parts`` on a line, ``gap`` spaces apart, breaking the line only between two
    parts, where the next would pass ``width``."""
    text = Text()
    used = 0
    for part in parts:
        if used and used + gap + part.cell_len > width:
            text.append("\n")
            used = 0
        elif used:
            text.append(" " * gap)
            used += gap
        text.append_text(part)
        used += part.cell_len
    return text


def progress_cell(job: dict[str, Any], width: int = 20) -> Text:
    """Return a job's bar of succeeded/failed over total, followed by ``done/total``."""
    metrics = job.get("batch_metrics") or {}
    succeeded = int(metrics.get("succeeded") or 0)
    failed = int(metrics.get("failed") or 0)
    total = int(metrics.get("total") or 0)
    text = stacked_bar(succeeded, failed, total, width)
    text.append(f" {succeeded + failed}/{total}")
    return text


def remaining_batches(job: dict[str, Any]) -> int:
    """Return how many of a job's batches have neither succeeded nor failed yet."""
    metrics = job.get("batch_metrics") or {}
    done = int(metrics.get("succeeded") or 0) + int(metrics.get("failed") or 0)
    return max(0, int(metrics.get("total") or 0) - done)


def eta_text(seconds: float | None, status: str | None) -> str:
    """Return an ETA for people: ``-`` for ended jobs or when the rate is unknown."""
    if is_terminal(status) or seconds is None:
        return "-"
    return format_duration(seconds)
