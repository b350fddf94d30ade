"""An API's jobs, newest first, live: status, progress, failures, timing and ETA."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

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
from cortex_tui.tui.logs_screen import LogsScreen
from cortex_tui.tui.polled_screen import PolledScreen
from cortex_tui.tui.throughput import Throughput

JOBS_LIMIT = 1000
COLUMNS = (
    ("job", "JOB ID"),
    ("status", "STATUS"),
    ("progress", "PROGRESS (SUCCEEDED/FAILED OF TOTAL)"),
    ("failed", "FAILED"),
    ("start", "START TIME"),
    ("duration", "DURATION"),
    ("eta", "ETA"),
)


class JobsScreen(PolledScreen):
    """The jobs of one API, from one ``GET /<api>`` per refresh."""

    HELP = (
        "The API's jobs, newest first, refreshed live. The bar shows succeeded (green) and"
        " failed (red) batches over the total; the ETA comes from the last minute's"
        " throughput. Enter opens a job; s stops it (after confirmation); l shows its logs;"
        " n submits a new job to this API."
    )
    BINDINGS = [
        Binding("enter", "open", "Open", priority=True),
        Binding("escape", "back", "Back"),
        Binding("s", "stop", "Stop job"),
        Binding("l", "logs", "Logs"),
        Binding("n", "submit", "Submit job"),
        Binding("r", "refresh", "Refresh"),
    ]

    def __init__(self, api: str) -> None:
        super().__init__()
        self.api = api
        self.jobs: list[Json] = []
        self.endpoint = ""
        self._throughput: dict[str, Throughput] = {}
        self._row_cache: dict[str, tuple[tuple[Any, ...], tuple[Cell, ...]]] = {}

    def compose_body(self) -> ComposeResult:
        yield KeyedTable(COLUMNS, id="jobs")
        yield Static("", id="empty", markup=False)

    def on_mount(self) -> None:
        self.title = self.cortex.view_title(f"Jobs of {self.api}")
        self.query_one(KeyedTable).focus()
        super().on_mount()

    def fetch(self, client: CortexClient) -> Any:
        return client.list_jobs(self.api, limit=JOBS_LIMIT)

    def show(self, data: Any) -> None:
        self.jobs = list(data.get("jobs") or [])
        self.endpoint = str(data.get("endpoint") or "")
        now = self.cortex.clock()
        tick = self.cortex.monotonic()
        rows: list[Row] = []
        for job in self.jobs:
            job_id = job["job_id"]
            eta = None
            if not is_terminal(job.get("status")):
                tracker = self._throughput.setdefault(job_id, Throughput())
                metrics = job.get("batch_metrics") or {}
                tracker.add(
                    tick, int(metrics.get("succeeded") or 0) + int(metrics.get("failed") or 0)
                )
                eta = tracker.eta(remaining_batches(job))
            else:
                self._throughput.pop(job_id, None)
            rows.append((job_id, self._cells(job, now, eta)))
        self.query_one(KeyedTable).sync(rows)
        count = len(self.jobs)
        shown = f"newest {count}" if count >= JOBS_LIMIT else str(count)
        self.sub_title = f"{shown} job{'' if count == 1 else 's'} · {self.endpoint}"
        self.query_one("#empty", Static).update(
            "" if self.jobs else "No jobs yet: press n to submit one."
        )

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
        )
        cached = self._row_cache.get(job["job_id"])
        if cached is not None and cached[0] == signature and not running:
            return cached[1]
        failed = int(metrics.get("failed") or 0)
        cells: tuple[Cell, ...] = (
            job["job_id"],
            status_text(status),
            progress_cell(job, 20),
            Text(str(failed), style="bold red" if failed else ""),
            local_time(start),
            format_duration(job_duration(start, job.get("end_time"), now)),
            eta_text(eta, status),
        )
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

    def action_submit(self) -> None:
        """Submit a job to this API."""
        self.cortex.open_submit(self.api)
