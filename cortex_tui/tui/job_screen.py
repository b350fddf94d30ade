"""One job: status, progress, batch metrics, live worker stats, throughput, failures, config."""

from __future__ import annotations

from typing import Any

import yaml
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Sparkline, Static

from cortex_tui.cli.get_job import WORKER_STATS
from cortex_tui.cli.timefmt import format_duration, format_seconds, job_duration, local_time
from cortex_tui.client import CortexClient, Json
from cortex_tui.errors import CortexTuiError
from cortex_tui.tui.cells import (
    FAILED_STYLE,
    IN_FLIGHT_STYLE,
    REMAINING_STYLE,
    SUCCEEDED_STYLE,
    eta_text,
    is_terminal,
    legend,
    remaining_batches,
    stacked_bar,
    status_text,
)
from cortex_tui.tui.confirm_screen import ConfirmScreen
from cortex_tui.tui.gpu_table import gpu_table
from cortex_tui.tui.keyed_table import Cell, KeyedTable, Row
from cortex_tui.tui.logs_screen import LogsScreen
from cortex_tui.tui.polled_screen import PolledScreen
from cortex_tui.tui.results_screen import ResultsScreen
from cortex_tui.tui.throughput import Throughput
from cortex_tui.tui.traceback_screen import TracebackScreen

_CONFIG_KEYS = ("workers", "batch_size", "source", "timeout", "retries", "max_worker_restarts")
LEDGER_COLUMNS = (
    ("batch", "BATCH"),
    ("error", "ERROR"),
    ("attempts", "ATTEMPTS"),
    ("worker", "WORKER"),
    ("items", "ITEMS"),
    ("time", "FAILED AT"),
)
# Below 120 columns: the time of day, no attempts (the traceback shows them), and the
# error last, where a long one is cut without cutting the other columns.
NARROW_LEDGER_COLUMNS = (
    ("batch", "BATCH"),
    ("items", "ITEMS"),
    ("worker", "WORKER"),
    ("time", "FAILED AT"),
    ("error", "ERROR"),
)


class JobScreen(PolledScreen):
    """A job's live status from one ``GET /<api>/<job_id>`` per refresh (plus the ledger
    of failed batches, fetched again only when the failed count changes)."""

    HELP = (
        "A job, live. The bar counts succeeded (green), failed (red), in-flight (yellow) and"
        " remaining batches separately. Throughput is measured from successive refreshes;"
        " the ETA uses the last minute's rate. Failed batches are listed with their error,"
        " attempts (below 120 columns, in the traceback only) and worker: select one and"
        " press t (or enter) for its traceback. s stops the job after confirmation; l opens"
        " its logs; o its results (paged, s there saves them); n submits another job. R"
        " re-runs the failed batches of an ended job as a new job, after confirmation, and"
        " opens it."
    )
    READONLY_HELP = (
        "A job, live. The bar counts succeeded (green), failed (red), in-flight (yellow) and"
        " remaining batches separately. Throughput is measured from successive refreshes;"
        " the ETA uses the last minute's rate. Failed batches are listed with their error,"
        " attempts (below 120 columns, in the traceback only) and worker: select one and"
        " press t (or enter) for its traceback. l opens its logs; o its results (paged, s"
        " there saves them)."
    )
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("l", "logs", "Logs"),
        Binding("o", "results", "Results"),
        Binding("s", "stop", "Stop job"),
        Binding("R", "retry", "Retry failed"),  # offered instead of s once the job ended
        Binding("t", "traceback", "Traceback"),
        Binding("n", "submit", "Submit job"),
        Binding("r", "refresh", "Refresh"),
    ]
    REFUSED_WHEN_READONLY = {
        "stop": "stopping a job",
        "submit": "submitting a job",
        "retry": "retrying failed batches",
    }
    NARROW_BELOW = 120
    DEFAULT_CSS = """
    JobScreen #body { padding: 0 1; scrollbar-gutter: stable; }
    JobScreen.-narrow #stats { layout: vertical; }
    JobScreen.-narrow #batches, JobScreen.-narrow #workers { width: 100%; }
    JobScreen .section { margin-top: 1; text-style: bold; color: $accent; }
    JobScreen #stats { height: auto; }
    JobScreen #batches, JobScreen #workers { width: 1fr; height: auto; }
    JobScreen #spark { height: 2; }
    JobScreen #ledger { height: auto; max-height: 12; }
    """

    def __init__(self, api: str, job_id: str) -> None:
        super().__init__()
        self.api = api
        self.job_id = job_id
        self.job: Json | None = None
        self.failed_batches: list[Json] = []
        self._ledger_failed = -1  # the failed count the ledger was fetched at
        self.throughput = Throughput()
        self.worker_rows: list[Json] = []  # the workers route's, for their GPUs

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="body"):
            yield Static("loading…", id="summary")
            yield Static("Progress", classes="section")
            yield Static("", id="bar", markup=False)
            with Horizontal(id="stats"):
                yield Static("", id="batches")
                yield Static("", id="workers")
            yield Static("Throughput", classes="section", id="spark-title", markup=False)
            yield Sparkline([], id="spark")
            yield Static("Failed batches", classes="section", id="ledger-title", markup=False)
            yield KeyedTable(LEDGER_COLUMNS, id="ledger")
            yield Static("", id="ledger-empty", markup=False)
            yield Static("Job config", classes="section")
            yield Static("", id="config", markup=False)

    def on_mount(self) -> None:
        self.title = self.cortex.view_title(f"Job {self.job_id}")
        self.sub_title = self.api

    def fetch(self, client: CortexClient) -> Any:
        job = client.job_status(self.api, self.job_id)
        failed = int((job.get("batch_metrics") or {}).get("failed") or 0)
        ledger = None
        if failed != self._ledger_failed:
            ledger = client.failed(self.api, self.job_id).get("failed_batches") or []
        workers = None if is_terminal(job.get("status")) else client.workers(self.api, self.job_id)
        return {"job": job, "failed_batches": ledger, "failed": failed, "workers": workers}

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Offer what the job can take: stop while it runs, retry once it ended with failures.
        allowed = super().check_action(action, parameters)
        if not allowed or self.job is None or action not in ("stop", "retry"):
            return allowed
        return self._offers()[action]

    def _offers(self) -> dict[str, bool]:
        job = self.job or {}
        ended = is_terminal(job.get("status"))
        failed = int((job.get("batch_metrics") or {}).get("failed") or 0)
        failed += int((job.get("item_metrics") or {}).get("failed") or 0)
        return {"stop": not ended, "retry": ended and failed > 0}

    def show(self, data: Any) -> None:
        job: Json = data["job"]
        offers = None if self.job is None else self._offers()  # None: every key offered
        self.job = job
        if self._offers() != offers:
            self.refresh_bindings()
        self.worker_rows = (data.get("workers") or {}).get("workers") or []
        metrics = job.get("batch_metrics") or {}
        finished = int(metrics.get("succeeded") or 0) + int(metrics.get("failed") or 0)
        if not is_terminal(job.get("status")):
            self.throughput.add(self.cortex.monotonic(), finished)
        if data["failed_batches"] is not None:
            self.failed_batches = data["failed_batches"]
            self._ledger_failed = data["failed"]
            self._show_ledger()
        self._show_summary(job)
        self._show_progress(job)
        self._show_stats(job)
        self._show_throughput(job)
        self.query_one("#config", Static).update(_config_text(job))

    def refill(self) -> None:
        if self.job is not None:  # what the layout changes
            self._show_ledger()
            self._show_summary(self.job)
            self._show_progress(self.job)
            self._show_throughput(self.job)

    def _show_summary(self, job: Json) -> None:
        now = self.cortex.clock()
        status = status_text(job.get("status"))
        if job.get("message"):
            status.append(f"  {job['message']}", style="italic")
        start = job.get("start_time")
        eta = self.throughput.eta(remaining_batches(job))
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        grid.add_row("status", status)
        grid.add_row("job id", f"{job['job_id']}  (api {job.get('api_name', self.api)})")
        stamps = (
            f"created {local_time(job.get('created_time'))}",
            f"started {local_time(start)}",
            f"ended {local_time(job.get('end_time'))}",
        )
        grid.add_row("times", ("\n" if self.narrow else "   ").join(stamps))
        grid.add_row(
            "duration",
            f"{format_duration(job_duration(start, job.get('end_time'), now))}"
            f"   ETA {eta_text(eta, job.get('status'))}",
        )
        self.query_one("#summary", Static).update(grid)

    def _show_progress(self, job: Json) -> None:
        metrics = job.get("batch_metrics") or {}
        succeeded = int(metrics.get("succeeded") or 0)
        failed = int(metrics.get("failed") or 0)
        total = int(metrics.get("total") or 0)
        in_flight = int(job.get("batches_in_flight") or 0)
        remaining = max(0, total - succeeded - failed - in_flight)
        width = max(10, self.query_one("#bar", Static).size.width or 60)
        text = stacked_bar(succeeded, failed, total, width, in_flight=in_flight)
        text.append("\n")
        parts = [
            Text.assemble(("■ ", style), f"{label} {count}")
            for label, count, style in (
                ("succeeded", succeeded, SUCCEEDED_STYLE),
                ("failed", failed, FAILED_STYLE),
                ("in flight", in_flight, IN_FLIGHT_STYLE),
                ("to do" if self.narrow else "remaining", remaining, REMAINING_STYLE),
            )
        ]
        done = succeeded + failed
        percent = f"{100 * done / total:.0f}%" if total else "-"
        summary = f"{done}/{total} done, {percent}"
        if not self.narrow:
            summary = f"({done}/{total} batches done, {percent})"
        parts.append(Text(summary, style="bold"))
        text.append_text(legend(parts, width, gap=2 if self.narrow else 3))
        self.query_one("#bar", Static).update(text)

    def _show_stats(self, job: Json) -> None:
        metrics = job.get("batch_metrics") or {}
        batches = Table(title="batch metrics", title_justify="left", expand=True)
        for header in ("in queue", "in flight", "succeeded", "failed", "total", "avg/batch"):
            batches.add_column(header, justify="right")
        batches.add_row(
            str(job.get("batches_in_queue", 0)),
            str(job.get("batches_in_flight", 0)),
            str(metrics.get("succeeded", 0)),
            str(metrics.get("failed", 0)),
            str(metrics.get("total", 0)),
            format_seconds(metrics.get("avg_time_per_batch")),
        )
        if job.get("isolate_failures"):
            items = job.get("item_metrics") or {}
            batches.caption = (
                f"items: {items.get('succeeded', 0)} succeeded, {items.get('failed', 0)} failed"
                " (failing items isolated)"
            )
        self.query_one("#batches", Static).update(batches)
        stats = job.get("worker_stats") or {}
        workers = Table(title="worker stats", title_justify="left", expand=True)
        for key in WORKER_STATS:
            workers.add_column(key, justify="right")
        workers.add_row(*(str(stats.get(key, 0)) for key in WORKER_STATS))
        gpus = gpu_table(self.worker_rows)
        self.query_one("#workers", Static).update(workers if gpus is None else Group(workers, gpus))

    def _show_throughput(self, job: Json) -> None:
        rates, recent = self.throughput.rates(), self.throughput.recent_rate()
        spark = self.query_one("#spark", Sparkline)
        width = max(10, spark.size.width or 100)
        spark.data = self.throughput.series(self.cortex.monotonic(), width)
        title = self.query_one("#spark-title", Static)
        if rates and recent is not None:  # now: the rate the ETA uses
            window = format_duration(self.throughput.window_s)
            over = (
                f"last {window}" if self.narrow else f"over the last {window}, oldest on the left"
            )
            title.update(f"Throughput: batches/s {over} (now {recent:.2f}, peak {max(rates):.2f})")
        elif is_terminal(job.get("status")):
            title.update("Throughput: the job has ended (measured only while it runs)")
        else:
            title.update("Throughput: measuring…")

    def _show_ledger(self) -> None:
        columns = NARROW_LEDGER_COLUMNS if self.narrow else LEDGER_COLUMNS
        rows: list[Row] = [
            (_ledger_key(batch), _ledger_cells(batch, self.narrow)) for batch in self.failed_batches
        ]
        ledger = self.query_one("#ledger", KeyedTable)
        ledger.set_columns(columns)
        ledger.sync(rows)
        ledger.display = bool(rows)
        self.query_one("#ledger-empty", Static).update("" if rows else "none: no batch has failed")
        self.query_one("#ledger-title", Static).update(
            f"Failed batches ({len(rows)}) — select one, t for its traceback"
            if rows
            else "Failed batches"
        )

    def _selected_batch(self) -> Json | None:
        if not self.failed_batches:
            return None
        key = self.query_one("#ledger", KeyedTable).selected_key
        return next(
            (b for b in self.failed_batches if _ledger_key(b) == key),
            self.failed_batches[0],
        )

    def action_traceback(self) -> None:
        """Show the selected failed batch's traceback."""
        batch = self._selected_batch()
        if batch is None:
            self.notify("no batch of this job has failed")
            return
        self.app.push_screen(TracebackScreen(batch))

    def on_data_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
        event.stop()
        self.action_traceback()

    def action_stop(self) -> None:
        """Stop this job, after confirmation."""
        if self.job is not None:
            self.request_stop(self.api, self.job)

    def action_retry(self) -> None:
        """Re-run this ended job's failed batches as a new job, after confirmation."""
        job = self.job
        if job is None or self.cortex.refuse_if_readonly("retrying failed batches"):
            return
        failed = int((job.get("batch_metrics") or {}).get("failed") or 0)
        items = int((job.get("item_metrics") or {}).get("failed") or 0)
        if not is_terminal(job.get("status")):
            self.notify("the job is still running: wait for it to end (or stop it with s)")
        elif not failed and not items:
            self.notify(f"job {self.job_id} has no failed batches: nothing to retry")
        else:
            what = f"{failed} failed batch{'' if failed == 1 else 'es'}"
            if not failed:  # stopped while isolating: only items are known to have failed
                what = f"{items} failed item{'' if items == 1 else 's'}"
            self.app.push_screen(
                ConfirmScreen(
                    f"Retry {what} of job {self.job_id}?",
                    "A new job re-runs them with this job's config; its results fill in this"
                    " job's failures (results --merge-retries).",
                    "Retry",
                ),
                self._retry_confirmed,
            )

    def _retry_confirmed(self, yes: bool | None) -> None:
        if yes:
            self._retry()

    @work(thread=True, group="retry")
    def _retry(self) -> None:
        try:
            job_id = self.cortex.client.retry(self.api, self.job_id)["job_id"]
        except CortexTuiError as e:
            self.app.call_from_thread(self.notify, f"could not retry: {e}", severity="error")
            return
        self.app.call_from_thread(self.notify, f"submitted job {job_id}: a retry of the failures")
        self.app.call_from_thread(self.app.push_screen, JobScreen(self.api, job_id))

    def action_logs(self) -> None:
        """Show this job's logs."""
        self.app.push_screen(LogsScreen(self.api, self.job_id))

    def action_results(self) -> None:
        """Show this job's results."""
        self.app.push_screen(ResultsScreen(self.api, self.job_id))

    def action_submit(self) -> None:
        """Submit another job to this API."""
        self.cortex.open_submit(self.api)


def _config_text(job: Json) -> str:
    shown: dict[str, Any] = {key: job[key] for key in _CONFIG_KEYS if key in job}
    shown["config"] = job.get("config") or {}
    text: str = yaml.safe_dump(shown, sort_keys=False, default_flow_style=False, width=100)
    return text.rstrip("\n")


def _ledger_cells(batch: Json, narrow: bool) -> tuple[Cell, ...]:
    """Return a failed batch's cells in the ledger's columns (``narrow``: its narrow ones)."""
    failed_time = local_time(batch.get("failed_time"))
    by_column: dict[str, Cell] = {
        "batch": str(batch.get("batch_index")),
        "error": Text(str(batch.get("error") or "-"), style="red"),
        "attempts": str(batch.get("attempts", "-")),
        "worker": str(batch.get("worker") or "-"),
        "items": _item_span(batch.get("first_item"), batch.get("size")),
        # The time of day alone in the narrow layout (the summary shows the job's dates).
        "time": failed_time.split()[-1] if narrow else failed_time,
    }
    columns = NARROW_LEDGER_COLUMNS if narrow else LEDGER_COLUMNS
    return tuple(by_column[key] for key, _ in columns)


def _ledger_key(batch: Json) -> str:
    """Return a ledger row's key: its batch, and its first item (isolated items of one batch
    each have a row)."""
    return f"{batch.get('batch_index')}:{batch.get('first_item')}"


def _item_span(first: object, size: object) -> str:
    """Return the items a failed batch holds: ``7``, or ``8-11``."""
    if not isinstance(first, int) or not isinstance(size, int):
        return "-"
    return str(first) if size == 1 else f"{first}-{first + size - 1}"
