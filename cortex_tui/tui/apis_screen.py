"""The first screen: every deployed API, its running jobs and its latest job."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from cortex_tui import footprint
from cortex_tui.cli.timefmt import last_update
from cortex_tui.client import CortexClient, Json
from cortex_tui.errors import CortexTuiError
from cortex_tui.tui.cells import progress_cell, status_text
from cortex_tui.tui.confirm_screen import ConfirmScreen
from cortex_tui.tui.jobs_screen import JobsScreen
from cortex_tui.tui.keyed_table import Cell, KeyedTable, Row
from cortex_tui.tui.list_filter import ListFilter
from cortex_tui.tui.polled_screen import PolledScreen

COLUMNS = (
    ("name", "NAME"),
    ("backend", "BACKEND"),
    ("running", "RUNNING JOBS"),
    ("latest", "LATEST JOB"),
    ("status", "STATUS"),
    ("progress", "PROGRESS"),
    ("updated", "LAST UPDATE"),
)
# Below 110 columns: what a glance needs, the latest job's id and the backend left out.
NARROW_COLUMNS = (
    ("name", "NAME"),
    ("running", "RUN"),
    ("status", "STATUS"),
    ("progress", "PROGRESS"),
    ("updated", "LAST UPDATE"),
)


class ApisScreen(PolledScreen):
    """The deployed APIs; enter opens one's jobs."""

    HELP = (
        "Every deployed API: its backend, how many of its jobs run, its latest job and how"
        " far that got. Enter opens the API's jobs; / filters by name; n submits a job to"
        " the selected API; d deploys a project directory; x deletes the selected API."
        " Below 110 columns the backend and the latest job's id are left out."
    )
    READONLY_HELP = (
        "Every deployed API: its backend, how many of its jobs run, its latest job and how"
        " far that got. Enter opens the API's jobs; / filters by name."
        " Below 110 columns the backend and the latest job's id are left out."
    )
    BINDINGS = [
        Binding("enter", "open", "Open", priority=True),
        Binding("slash", "filter", "Filter", priority=True),
        Binding("n", "submit", "Submit job"),
        Binding("d", "deploy", "Deploy"),
        Binding("x", "delete_api", "Delete API"),
        Binding("r", "refresh", "Refresh"),
        Binding("escape", "back", "Clear filter", show=False),
    ]
    NARROW_BELOW = 110
    REFUSED_WHEN_READONLY = {
        "submit": "submitting a job",
        "deploy": "deploying",
        "delete_api": "deleting an API",
    }

    def __init__(self) -> None:
        super().__init__()
        self.apis: list[Json] = []

    def compose_body(self) -> ComposeResult:
        yield ListFilter(placeholder="filter APIs by name (enter to keep, escape to clear)")
        yield KeyedTable(COLUMNS, id="apis")
        yield Static("", id="empty", markup=False)

    def on_mount(self) -> None:
        self.title = self.cortex.view_title("APIs")
        self.query_one(KeyedTable).focus()

    def fetch(self, client: CortexClient) -> Any:
        return client.list_apis()

    def show(self, data: Any) -> None:
        self.apis = list(data.get("apis") or [])
        self.refill()

    def refill(self) -> None:
        box = self.query_one(ListFilter)
        needle = box.needle
        now = self.cortex.clock()
        columns = NARROW_COLUMNS if self.narrow else COLUMNS
        rows: list[Row] = [
            (api["name"], _cells(api, now, columns))
            for api in self.apis
            if box.matches(api["name"])
        ]
        table = self.query_one(KeyedTable)
        table.set_columns(columns)
        table.sync(rows)
        empty = self.query_one("#empty", Static)
        if not self.apis:
            hint = "" if self.cortex.readonly else ": press d to deploy a project directory"
            empty.update(f"No APIs are deployed yet{hint}.")
        elif not rows:
            empty.update(f"No API matches {needle!r} (escape clears the filter).")
        else:
            empty.update("")
        count = f"{len(rows)} of {len(self.apis)} shown" if needle else f"{len(self.apis)} deployed"
        self.sub_title = f"{count} · {self.cortex.client.base_url}"

    def action_open(self) -> None:
        """Open the selected API's jobs."""
        name = self.query_one(KeyedTable).selected_key
        if name is not None:
            self.app.push_screen(JobsScreen(name))

    def on_data_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_submit(self) -> None:
        """Submit a job to the selected API."""
        name = self.query_one(KeyedTable).selected_key
        if name is None:
            self.notify("deploy an API first (d)", severity="warning")
            return
        self.cortex.open_submit(name)

    def action_deploy(self) -> None:
        """Deploy a project directory."""
        self.cortex.open_deploy(self.poll_now)

    def action_delete_api(self) -> None:
        """Delete the selected API after confirmation (refused in read-only mode)."""
        name = self.query_one(KeyedTable).selected_key
        if name is None or self.cortex.refuse_if_readonly("deleting an API"):
            return
        self._confirm_delete(name)

    @work(thread=True, group="delete-api", exclusive=True)
    def _confirm_delete(self, name: str) -> None:
        """Ask the server what goes with the API, then show the dialog that says so."""
        try:
            usage = self.cortex.client.api_usage(name)
        except CortexTuiError as e:
            self.app.call_from_thread(self.notify, f"cannot delete {name}: {e}", severity="error")
            return
        consequence = " ".join(footprint.deletion(usage, purge=False))

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.cortex.delete_api(name, self.poll_now)

        dialog = ConfirmScreen(f"Delete API {name}?", consequence, "Delete")
        self.app.call_from_thread(self.app.push_screen, dialog, confirmed)


def _cells(api: Json, now: float, columns: tuple[tuple[str, str], ...]) -> tuple[Cell, ...]:
    job = api.get("latest_job") or {}
    narrow = columns is NARROW_COLUMNS
    cells: dict[str, Cell] = {
        "name": Text(api["name"], style="bold"),
        "backend": api.get("backend") or "-",
        "running": str(api.get("running_jobs", 0)),
        "latest": job.get("job_id") or "-",
        "status": status_text(job.get("status"), compact=narrow) if job else Text("-", style="dim"),
        "progress": progress_cell(job, 10 if narrow else 16) if job else Text("-", style="dim"),
        "updated": last_update(api, now),
    }
    return tuple(cells[key] for key, _ in columns)
