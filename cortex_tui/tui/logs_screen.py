"""A job's whole log, all workers interleaved and tagged, followed live from the server."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input, Static

from cortex_tui.errors import CortexTuiError
from cortex_tui.tui.banner import ConnectionBanner
from cortex_tui.tui.cells import is_terminal
from cortex_tui.tui.log_view import LogView
from cortex_tui.tui.view_screen import ViewScreen

if TYPE_CHECKING:
    pass

FLUSH_S = 0.1  # lines are added to the view at most this often, however fast they come
FLUSH_BUDGET_S = 0.02  # with at most this much UI time per flush
FLUSH_CHUNK = 250


_STATES = {
    "connecting": "connecting…",
    "following": "streaming",
    "reconnecting": "reconnecting…",
    "ended": "the job has ended: this is the whole log",
}
_NARROW_STATES = {**_STATES, "ended": "job ended"}


class LogsScreen(ViewScreen):
    """The logs of one job, streamed from the follow endpoint until the job ends."""

    HELP = (
        "Every line of the job's log: the orchestrator's and each worker's, tagged with the"
        " worker and batch, in time order, nothing dropped. f toggles following the end;"
        " / searches (matches are highlighted, other lines stay), n and N jump between"
        " matches; [ and ] pick a worker to show (or all); w wraps long lines; t shows or"
        " hides timestamps (UTC). Arrows, PgUp/PgDn, g and G scroll; scrolling up pauses"
        " following and G (end) resumes it. s saves the whole log (as the server has it"
        " now) to a file in the current directory. Below 120 columns the status line leaves"
        " out wrapping and timestamps (the lines show them)."
    )
    NARROW_BELOW = 120
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("f", "toggle_follow", "Follow"),
        Binding("slash", "search", "Search"),
        Binding("n", "next_match", "Next match"),
        Binding("N", "previous_match", "Prev match"),
        Binding("right_square_bracket", "next_worker", "Worker"),
        Binding("left_square_bracket", "previous_worker", "Prev worker", show=False),
        Binding("w", "toggle_wrap", "Wrap"),
        Binding("t", "toggle_timestamps", "Timestamps"),
        Binding("s", "save", "Save"),
    ]
    DEFAULT_CSS = """
    LogsScreen #status { height: auto; max-height: 3; background: $boost; padding: 0 1; }
    LogsScreen #search { dock: bottom; display: none; }
    """

    def __init__(self, api: str, job_id: str) -> None:
        super().__init__()
        self.api = api
        self.job_id = job_id
        self.stream_state = "connecting"
        self._buffer: list[str] = []
        self._received = 0

    @property
    def view(self) -> LogView:
        """Return the log view."""
        return self.query_one(LogView)

    def compose_body(self) -> ComposeResult:
        yield LogView(id="log")
        yield Static("", id="status", markup=False)
        yield Input(placeholder="search (enter to find, escape to cancel)", id="search")

    def on_mount(self) -> None:
        self.title = self.cortex.view_title(f"Logs of {self.job_id}")
        self.sub_title = self.api
        self.view.focus()
        self.watch(self.view, "follow", self._show_status, init=False)
        self.fit(self.app.size.width)
        self._show_status()
        self._follow()
        self.set_interval(FLUSH_S, self._flush)

    # --- the stream -----------------------------------------------------------------

    @work(exclusive=True, group="logs")
    async def _follow(self) -> None:
        """Stream the log; after a lost connection, reconnect and skip what was read."""
        while True:
            try:
                await self._read_stream()
                # The server also closes the stream when it shuts down: only a job that
                # has ended (and whose workers are gone) has no more lines to come.
                status = await asyncio.to_thread(
                    self.cortex.client.job_status, self.api, self.job_id
                )
            except CortexTuiError as e:
                self.stream_state = "reconnecting"
                self.query_one(ConnectionBanner).show_error(
                    e, self.cortex.refresh_s, self.cortex.clock()
                )
                self._show_status()
            else:
                if is_terminal(status.get("status")):
                    self.stream_state = "ended"
                    self._flush()
                    return
            await asyncio.sleep(self.cortex.refresh_s)

    async def _read_stream(self) -> None:
        """Read the follow stream into the buffer, skipping the lines already received."""
        skip = self._received
        stream = self.cortex.client.stream_logs(self.api, self.job_id, follow=True)
        async for lines in stream:
            if skip:
                dropped = min(skip, len(lines))
                skip -= dropped
                lines = lines[dropped:]
            self._buffer.extend(lines)
            self._received += len(lines)
            if self.stream_state != "following":
                self.stream_state = "following"
                self.query_one(ConnectionBanner).clear()
                self._show_status()

    def _flush(self) -> None:
        if self._buffer:
            # A bounded amount of work per tick: catching up on a long log never stalls
            # the UI; what is left waits for the next tick.
            deadline = time.perf_counter() + FLUSH_BUDGET_S
            while self._buffer and time.perf_counter() < deadline:
                lines = self._buffer[:FLUSH_CHUNK]
                del self._buffer[:FLUSH_CHUNK]
                self.view.append_raw(lines)
            self._show_status()
        elif self.stream_state == "ended":
            self._show_status()

    def refill(self) -> None:
        self._show_status()

    def _show_status(self) -> None:
        parts = _narrow_status(self.view) if self.narrow else _status(self.view)
        if self._buffer:
            parts.append(f"{len(self._buffer)} more lines loading")
        parts.append((_NARROW_STATES if self.narrow else _STATES)[self.stream_state])
        self.query_one("#status", Static).update(" · ".join(parts))

    # --- actions ----------------------------------------------------------------

    def action_back(self) -> None:
        """Close the search, clear the pattern, or go back."""
        search = self.query_one("#search", Input)
        if search.display:
            search.display = False
            self.view.focus()
        elif self.view.pattern:
            self.view.pattern = ""
            self._show_status()
        else:
            self.app.pop_screen()

    def action_save(self) -> None:
        """Save the job's whole log to a file."""
        self.notify("saving the log…")
        self.cortex.save_lines(
            "log lines",
            f"{self.api}-{self.job_id}.log",
            lambda: self.cortex.client.logs(self.api, self.job_id),
        )

    def action_toggle_follow(self) -> None:
        """Follow the end of the log, or stop following it."""
        self.view.follow = not self.view.follow
        self._show_status()

    def action_toggle_wrap(self) -> None:
        """Wrap long lines, or not."""
        self.view.wrap = not self.view.wrap
        self._show_status()

    def action_toggle_timestamps(self) -> None:
        """Show or hide the time of each line."""
        self.view.timestamps = not self.view.timestamps
        self._show_status()

    def action_search(self) -> None:
        """Open the search box."""
        search = self.query_one("#search", Input)
        search.display = True
        search.value = self.view.pattern
        search.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        event.input.display = False
        self.view.focus()
        self.view.pattern = event.value
        if event.value and not self.view.next_match():
            self.notify(f"no line contains {event.value!r}", severity="warning")
        self._show_status()

    def action_next_match(self) -> None:
        """Jump to the next match."""
        self._jump(backwards=False)

    def action_previous_match(self) -> None:
        """Jump to the previous match."""
        self._jump(backwards=True)

    def _jump(self, backwards: bool) -> None:
        if not self.view.pattern:
            self.notify("search first with /")
        elif not self.view.next_match(backwards):
            self.notify(f"no line contains {self.view.pattern!r}", severity="warning")
        self._show_status()

    def action_next_worker(self) -> None:
        """Show the next worker's lines only (after the last: all workers)."""
        self._cycle_worker(1)

    def action_previous_worker(self) -> None:
        """Show the previous worker's lines only."""
        self._cycle_worker(-1)

    def _cycle_worker(self, step: int) -> None:
        choices: list[str | None] = [None, *sorted(self.view.worker_names, key=_worker_order)]
        current = choices.index(self.view.worker) if self.view.worker in choices else 0
        self.view.worker = choices[(current + step) % len(choices)]
        self._show_status()


def _status(view: LogView) -> list[str]:
    """Return the parts of the status line: what is shown, and how."""
    parts = [
        f"{view.shown_count} of {len(view.lines)} lines",
        f"worker: {view.worker or 'all'}",
        "follow: on" if view.follow else "follow: off (f)",
        f"wrap: {'on' if view.wrap else 'off'}",
        f"timestamps: {'on' if view.timestamps else 'off'}",
    ]
    if view.pattern:
        where = f"{view.current_match + 1}/" if view.current_match >= 0 else ""
        found = len(view.matches)
        parts.append(f"search {view.pattern!r}: {where}{found} line{'' if found == 1 else 's'}")
    return parts


def _narrow_status(view: LogView) -> list[str]:
    """Return the status line's parts for a narrow terminal: no wrapping or timestamps (the
    lines show them), the search's matches without words."""
    parts = [
        f"{view.shown_count}/{len(view.lines)} lines",
        f"worker {view.worker or 'all'}",
        "follow on" if view.follow else "follow off (f)",
    ]
    if view.pattern:
        where = f"{view.current_match + 1}/" if view.current_match >= 0 else ""
        parts.append(f"/{view.pattern}: {where}{len(view.matches)}")
    return parts


def _worker_order(name: str) -> tuple[int, int, str]:
    digits = "".join(ch for ch in name if ch.isdigit())
    return (0 if name == "orchestrator" else 1, int(digits) if digits else -1, name)
