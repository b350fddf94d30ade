"""A job's results in item order, a page at a time, however many there are."""

from __future__ import annotations

import json
import tempfile
import time
from array import array
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable, Static
from textual.worker import get_current_worker

from cortex_tui.errors import CortexTuiError
from cortex_tui.tui.banner import ConnectionBanner
from cortex_tui.tui.view_screen import ViewScreen

if TYPE_CHECKING:
    pass

PAGE = 100  # results on a page
RESULT_CELLS = 200  # a longer result is cut in the view (saved whole)
_PROGRESS_S = 0.25  # how often the loader says how far it got


class ResultsScreen(ViewScreen):
    """The results of one job, streamed once into a file on disk and shown from there by
    page, so a job of a million results costs the view one page of rows."""

    HELP = (
        "The job's results, in item order, a page of 100 at a time: n and p turn the pages,"
        " g and G go to the first and the last. Each row is one item's result (or one"
        " batch's, when its predictor returned something other than a list as long as the"
        " batch); long results are cut here. s saves every result to a JSON-lines file in"
        " the current directory (the same lines as cortex-tui results)."
    )
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("n", "page(1)", "Next page"),
        Binding("p", "page(-1)", "Prev page"),
        Binding("s", "save", "Save"),
        Binding("g", "first_page", "First page", show=False),
        Binding("G", "last_page", "Last page", show=False),
    ]
    DEFAULT_CSS = """
    ResultsScreen #results { height: 1fr; }
    ResultsScreen #status { height: 1; background: $boost; padding: 0 1; }
    """

    class Loaded(Message):
        """``count`` results are in the spool file (all of them when ``done``)."""

        def __init__(self, count: int, done: bool) -> None:
            super().__init__()
            self.count = count
            self.done = done

    class LoadFailed(Message):
        """Reading the results failed."""

        def __init__(self, error: CortexTuiError) -> None:
            super().__init__()
            self.error = error

    def __init__(self, api: str, job_id: str) -> None:
        super().__init__()
        self.api = api
        self.job_id = job_id
        self.page = 0
        self.available = 0  # results readable from the spool file
        self.state = "loading"
        self._offsets = array("q", [0])  # where each result starts in the spool (and ends)
        self._spool_dir = tempfile.TemporaryDirectory(prefix="cortex-tui-results-")
        self._spool = Path(self._spool_dir.name) / "results.jsonl"
        self._shown: tuple[int, int] = (-1, -1)

    def compose_body(self) -> ComposeResult:
        yield DataTable(id="results", cursor_type="row", zebra_stripes=True)
        yield Static("", id="status", markup=False)

    def on_mount(self) -> None:
        self.title = self.cortex.view_title(f"Results of {self.job_id}")
        self.sub_title = self.api
        table = self.query_one(DataTable)
        table.add_column("ITEM", key="item")
        table.add_column("BATCH", key="batch")
        table.add_column("RESULT", key="result")
        table.focus()
        self._show_status()
        self._load()

    def on_unmount(self) -> None:
        self._spool_dir.cleanup()  # a loader still writing keeps its file until it stops

    # --- loading into the spool file --------------------------------------------------

    @work(thread=True, exclusive=True, group="results")
    def _load(self) -> None:
        worker = get_current_worker()
        count, said = 0, time.monotonic()
        try:
            with self._spool.open("wb") as spool:
                for line in self.cortex.client.results(self.api, self.job_id):
                    if worker.is_cancelled:
                        return
                    spool.write(line.encode() + b"\n")
                    self._offsets.append(spool.tell())
                    count += 1
                    if time.monotonic() - said > _PROGRESS_S:
                        spool.flush()
                        self.post_message(self.Loaded(count, done=False))
                        said = time.monotonic()
        except CortexTuiError as e:
            self.post_message(self.LoadFailed(e))
            return
        self.post_message(self.Loaded(count, done=True))

    def on_results_screen_loaded(self, message: Loaded) -> None:
        self.available = message.count
        if message.done:
            self.state = "done"
        self._show_page()

    def on_results_screen_load_failed(self, message: LoadFailed) -> None:
        self.state = "failed"
        self.query_one(ConnectionBanner).show_error(
            message.error, self.cortex.refresh_s, self.cortex.clock()
        )
        self._show_status(f"could not read the results: {message.error}")

    # --- pages ----------------------------------------------------------------------

    @property
    def pages(self) -> int:
        """Return how many pages the results loaded so far fill."""
        return max(1, -(-self.available // PAGE))

    def _show_page(self) -> None:
        start = self.page * PAGE
        end = min(start + PAGE, self.available)
        if (start, end) != self._shown:
            self._shown = (start, end)
            table = self.query_one(DataTable)
            table.clear()
            for index, line in enumerate(self._read(start, end), start):
                table.add_row(*_row(line), key=str(index))
        self._show_status()

    def _read(self, start: int, end: int) -> list[str]:
        if end <= start:
            return []
        with self._spool.open("rb") as spool:
            spool.seek(self._offsets[start])
            data = spool.read(self._offsets[end] - self._offsets[start])
        return data.decode().splitlines()

    def _show_status(self, problem: str = "") -> None:
        start, end = self.page * PAGE, min((self.page + 1) * PAGE, self.available)
        parts = [
            f"results {start + 1} to {end} of {self.available:,}" if end else "no results",
            f"page {self.page + 1} of {self.pages}",
        ]
        if problem:
            parts.append(problem)
        elif self.state == "done":
            parts.append("all loaded" if self.available else "the job has no results (yet)")
        else:
            parts.append("loading…")
        self.query_one("#status", Static).update(" · ".join(parts))

    def action_page(self, step: int) -> None:
        """Turn ``step`` pages."""
        self._go(self.page + step)

    def action_first_page(self) -> None:
        """Go to the first page."""
        self._go(0)

    def action_last_page(self) -> None:
        """Go to the last page."""
        self._go(self.pages - 1)

    def _go(self, page: int) -> None:
        self.page = min(max(0, page), self.pages - 1)
        self._show_page()

    # --- actions ----------------------------------------------------------------------

    def action_save(self) -> None:
        """Save every result to a JSON-lines file."""
        self.notify("saving the results…")
        self.cortex.save_lines(
            "results",
            f"{self.api}-{self.job_id}-results.jsonl",
            lambda: self.cortex.client.results(self.api, self.job_id),
        )

    def action_back(self) -> None:
        """Go back to the job."""
        self.app.pop_screen()


def _row(line: str) -> tuple[str | Text, ...]:
    try:
        record: dict[str, Any] = json.loads(line)
        result = json.dumps(record["result"])
        item, batch = str(record["item_index"]), str(record["batch_index"])
    except (ValueError, KeyError, TypeError):
        return ("?", "?", Text(line[:RESULT_CELLS], style="red"))
    if record.get("batch_result"):
        item = f"{item} (batch)"
    if len(result) > RESULT_CELLS:
        result = result[: RESULT_CELLS - 1] + "…"
    return (item, batch, Text(result))
