"""An API's jobs, newest first, live: status, progress, failures, timing and ETA."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from cortex_tui.cli.render import short_status
from cortex_tui.cli.timefmt import format_duration, job_duration, local_time
from cortex_tui.client import CortexClient, Json
from cortex_tui.tui.cells import (
    eta_text,
    is_terminal,
    progress_cell,
    remaining_batches,
    status_text,
)
from cortex_tui.tui.job_screen import JobScreen
from cortex_tui.tui.keyed_table import Cell, KeyedTable, Row
from cortex_tui.tui.list_filter import ListFilter
from cortex_tui.tui.logs_screen import LogsScreen
from cortex_tui.tui.polled_screen import PolledScreen
from cortex_tui.tui.results_screen import ResultsScreen
from cortex_tui.tui.throughput import Throughput

JOBS_LIMIT = 1000
_NO_JOBS = {False: "No jobs yet: press n to submit one.", True: "No jobs yet."}
COLUMNS = (
    ("job", "JOB ID"),
    ("status", "STATUS"),
    ("progress", "PROGRESS (SUCCEEDED/FAILED OF TOTAL)"),
    ("failed", "FAILED"),
    ("start", "START TIME"),
    ("duration", "DURATION"),
    ("eta", "ETA"),
)
# Below 130 columns: no start time, and a shorter bar.
NARROW_COLUMNS = (
    ("job", "JOB ID"),
    ("status", "STATUS"),
    ("progress", "PROGRESS"),
    ("failed", "FAILED"),
    ("duration", "DURATION"),
    ("eta", "ETA"),
)


class JobsScreen(PolledScreen):
    """The jobs of one API, from one ``GET /<api>`` per refresh."""

    HELP = (
        "The API's jobs, newest first, refreshed live. The bar shows succeeded (green) and"
        " failed (red) batches over the total; the ETA comes from the last minute's"
        " throughput. Enter opens a job; / filters by job id or status; s stops it (after"
        " confirmation); l shows its logs; o its results; n submits a new job to this API."
        " Below 130 columns the start time is left out."
    )
    READONLY_HELP = (
        "The API's jobs, newest first, refreshed live. The bar shows succeeded (green) and"
        " failed (red) batches over the total; the ETA comes from the last minute's"
        " throughput. Enter opens a job; / filters by job id or status; l shows its logs;"
        " o its results. Below 130 columns the start time is left out."
    )
    BINDINGS = [
        Binding("enter", "open", "Open", priority=True),
        Binding("escape", "back", "Back"),
        Binding("slash", "filter", "Filter", priority=True),
        Binding("s", "stop", "Stop job"),
        Binding("l", "logs", "Logs"),
        Binding("o", "results", "Results"),
        Binding("n", "submit", "Submit job"),
        Binding("r", "refresh", "Refresh"),
    ]
    NARROW_BELOW = 130
    REFUSED_WHEN_READONLY = {"stop": "stopping a job", "submit": "submitting a job"}

    def __init__(self, api: str) -> None:
        super().__init__()
        self.api = api
        self.jobs: list[Json] = []
        self.endpoint = ""
        self._throughput: dict[str, Throughput] = {}
        self._etas: dict[str, float | None] = {}
        self._row_cache: dict[str, tuple[tuple[Any, ...], tuple[Cell, ...]]] = {}

    def compose_body(self) -> ComposeResult:
        yield ListFilter(placeholder="filter jobs by id or status (enter to keep, escape to clear)")
        yield KeyedTable(COLUMNS, id="jobs")
        yield Static("", id="empty", markup=False)

    def on_mount(self) -> None:
        self.title = self.cortex.view_title(f"Jobs of {self.api}")
        self.query_one(KeyedTable).focus()

    def fetch(self, client: CortexClient) -> Any:
        return client.list_jobs(self.api, limit=JOBS_LIMIT)

    def show(self, data: Any) -> None:
        self.jobs = list(data.get("jobs") or [])
        self.endpoint = str(data.get("endpoint") or "")
        tick = self.cortex.monotonic()
        self._etas = {}
        for job in self.jobs:
            job_id = job["job_id"]
            if is_terminal(job.get("status")):
                self._throughput.pop(job_id, None)
                continue
            tracker = self._throughput.setdefault(job_id, Throughput())
            metrics = job.get("batch_metrics") or {}
            tracker.add(tick, int(metrics.get("succeeded") or 0) + int(metrics.get("failed") or 0))
            self._etas[job_id] = tracker.eta(remaining_batches(job))
        self.refill()

    def refill(self) -> None:
        box = self.query_one(ListFilter)
        now = self.cortex.clock()
        rows: list[Row] = [
            (job["job_id"], self._cells(job, now, self._etas.get(job["job_id"])))
            for job in self.jobs
            if box.matches(job["job_id"], short_status(job.get("status")))
        ]
        table = self.query_one(KeyedTable)
        table.set_columns(NARROW_COLUMNS if self.narrow else COLUMNS)
        table.sync(rows)
        count = len(self.jobs)
        shown = f"newest {count}" if count >= JOBS_LIMIT else str(count)
        if box.needle:
            shown = f"{len(rows)} of {shown}"
        self.sub_title = f"{shown} job{'' if count == 1 else 's'} · {self.endpoint}"
        if not self.jobs:
            empty = _NO_JOBS[self.cortex.readonly]
        elif not rows:
            empty = f"No job matches {box.needle!r} (escape clears the filter)."
        else:
            empty = ""
        self.query_one("#empty", Static).update(empty)

    def _cells(self, job: Json, now: float, eta: float | None) -> tuple[Cell, ...]:
        metrics = job.get("batch_metrics") or {}
        status = job.get("status")
        start = job.get("start_time") or job.get("created_time")
        running = not is_terminal(status)
        signature = (
            status,
            metrics.get("succeeded"),
            metrics.get("failed"),
            metrics.get("total"),
            start,
            job.get("end_time"),
            self.narrow,
        )
        cached = self._row_cache.get(job["job_id"])
        if cached is not None and cached[0] == signature and not running:
            return cached[1]
        failed = int(metrics.get("failed") or 0)
        by_column: dict[str, Cell] = {
            "job": job["job_id"],
            "status": status_text(status, compact=self.narrow),
            "progress": progress_cell(job, 10 if self.narrow else 20),
            "failed": Text(str(failed), style="bold red" if failed else ""),
            "start": local_time(start),
            "duration": format_duration(job_duration(start, job.get("end_time"), now)),
            "eta": eta_text(eta, status),
        }
        columns = NARROW_COLUMNS if self.narrow else COLUMNS
        cells = tuple(by_column[key] for key, _ in columns)
        self._row_cache[job["job_id"]] = (signature, cells)
        return cells

    def _selected(self) -> Json | None:
        job_id = self.query_one(KeyedTable).selected_key
        return next((j for j in self.jobs if j["job_id"] == job_id), None)

    def action_open(self) -> None:
        """Open the selected job."""
        job = self._selected()
        if job is not None:
            self.app.push_screen(JobScreen(self.api, job["job_id"]))

    def on_data_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_stop(self) -> None:
        """Stop the selected job, after confirmation."""
        job = self._selected()
        if job is not None:
            self.request_stop(self.api, job)

    def action_logs(self) -> None:
        """Show the selected job's logs."""
        job = self._selected()
        if job is not None:
            self.app.push_screen(LogsScreen(self.api, job["job_id"]))

    def action_results(self) -> None:
        """Show the selected job's results."""
        job = self._selected()
        if job is not None:
            self.app.push_screen(ResultsScreen(self.api, job["job_id"]))

    def action_submit(self) -> None:
        """Submit a job to this API."""
        self.cortex.open_submit(self.api)
