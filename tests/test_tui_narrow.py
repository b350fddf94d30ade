"""The TUI in an 80x24 terminal: nothing essential off-screen, every key reachable."""

from __future__ import annotations

import threading

import httpx
from textual.containers import VerticalScroll
from textual.pilot import Pilot
from textual.widgets import Button, Static

from cortex_tui.cli.timefmt import local_time
from cortex_tui.tui import CortexApp
from cortex_tui.tui.confirm_screen import ConfirmScreen
from cortex_tui.tui.help_screen import HelpScreen
from cortex_tui.tui.job_screen import JobScreen
from cortex_tui.tui.jobs_screen import JobsScreen
from cortex_tui.tui.keyed_table import KeyedTable
from cortex_tui.tui.list_filter import ListFilter
from cortex_tui.tui.logs_screen import LogsScreen
from cortex_tui.tui.submit_screen import SubmitScreen
from tests import tui_stub
from tests.test_tui_stubbed import offered, run, shown, until
from tests.tui_stub import Recorded, Ticks

NARROW = (80, 24)


def header_and_first_row(app: CortexApp) -> list[str]:
    return [*shown(app.screen.query_one(KeyedTable)).splitlines(), "", ""][:2]


async def showing(app: CortexApp, pilot: Pilot[None], text: str) -> list[str]:
    """Return the table's header and first row once the table shows ``text``."""
    await until(pilot, lambda: text in "".join(header_and_first_row(app)))
    return header_and_first_row(app)


def test_the_apis_view_keeps_progress_and_last_update_in_view() -> None:
    async def scenario(app: CortexApp, pilot: Pilot[None]) -> None:
        header, row = await showing(app, pilot, "123/400")
        assert len(header.rstrip()) <= 80
        for column in ("NAME", "STATUS", "PROGRESS", "LAST UPDATE"):
            assert column in header
        assert "running" in row and "123/400" in row and row.rstrip().endswith("now")
        footer = await offered(app, pilot)
        assert footer[-2:] == ["q", "question_mark"]
        assert {"enter", "slash", "n"} <= set(footer)

    run(scenario, size=NARROW)


def test_the_apis_view_takes_the_narrow_layout_when_the_terminal_shrinks() -> None:
    async def scenario(app: CortexApp, pilot: Pilot[None]) -> None:
        assert "BACKEND" in (await showing(app, pilot, "123/400"))[0]
        await pilot.resize_terminal(*NARROW)
        await until(pilot, lambda: "BACKEND" not in header_and_first_row(app)[0])
        header, row = header_and_first_row(app)
        assert "LAST UPDATE" in header and "123/400" in row
        await pilot.resize_terminal(160, 48)
        await until(pilot, lambda: "LATEST JOB" in header_and_first_row(app)[0])
        assert app.screen.query_one(KeyedTable).selected_key == tui_stub.API

    run(scenario)


def test_the_jobs_view_headers_read_whole() -> None:
    async def scenario(app: CortexApp, pilot: Pilot[None]) -> None:
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen))
        header, row = await showing(app, pilot, "123/400")
        assert header.split() == ["JOB", "ID", "STATUS", "PROGRESS", "FAILED", "DURATION", "ETA"]
        assert row.startswith(f" {tui_stub.RUNNING}  running")
        assert (await offered(app, pilot))[-2:] == ["q", "question_mark"]

    run(scenario, size=NARROW)


def test_the_job_view_stacks_its_tables_with_whole_headers() -> None:
    async def scenario(app: CortexApp, pilot: Pilot[None]) -> None:
        app.push_screen(JobScreen(tui_stub.API, tui_stub.RUNNING))
        await until(pilot, lambda: isinstance(app.screen, JobScreen) and app.screen.job is not None)
        await pilot.pause(0.1)
        batches = shown(app.screen.query_one("#batches", Static))
        workers = shown(app.screen.query_one("#workers", Static))
        for header in ("in queue", "in flight", "succeeded", "avg/batch"):
            assert header in batches
        for header in ("pending", "initializing", "running", "stalled"):
            assert header in workers
        assert "…" not in batches + workers
        assert (await offered(app, pilot))[-2:] == ["q", "question_mark"]

    run(scenario, size=NARROW)


def test_the_job_view_offers_stop_while_a_job_runs_and_retry_once_it_failed() -> None:
    async def footer_of(app: CortexApp, pilot: Pilot[None], job_id: str) -> list[str]:
        app.push_screen(JobScreen(tui_stub.API, job_id))
        await until(pilot, lambda: isinstance(app.screen, JobScreen) and app.screen.job is not None)
        await pilot.pause(0.1)
        footer = await offered(app, pilot)
        app.pop_screen()
        return footer

    async def scenario(app: CortexApp, pilot: Pilot[None]) -> None:
        running = await footer_of(app, pilot, tui_stub.RUNNING)
        failed = await footer_of(app, pilot, tui_stub.FAILED)
        assert "s" in running and "R" not in running
        assert "R" in failed and "s" not in failed  # it fits 80 columns
        assert failed[-2:] == ["q", "question_mark"]

    run(scenario, size=NARROW)


def test_the_submit_form_scrolls_to_its_buttons() -> None:
    async def scenario(app: CortexApp, pilot: Pilot[None]) -> None:
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, SubmitScreen))
        form = app.screen
        await pilot.press("tab", "tab", "tab", "tab", "tab")
        button = form.query_one("#submit", Button)
        assert app.focused is button
        await pilot.pause(0.2)
        assert form.region.contains_region(button.region)
        assert button.region.right <= 80 and button.region.bottom <= 24

    run(scenario, size=NARROW)


def test_every_views_help_fits_without_scrolling() -> None:
    async def help_of(app: CortexApp, pilot: Pilot[None]) -> tuple[int, list[str]]:
        """Open the help; return how far it scrolls and the keys it lists."""
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.pause(0.1)
        scroll = app.screen.query_one(VerticalScroll)
        keys = [line.split()[0] for line in shown(scroll.query(Static)[-1]).splitlines()]
        assert scroll.region.bottom <= 24
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen))
        return scroll.max_scroll_y, keys

    async def scenario(app: CortexApp, pilot: Pilot[None]) -> None:
        await showing(app, pilot, "123/400")
        for view in ("apis", "jobs", tui_stub.RUNNING, tui_stub.FAILED):
            if view == "jobs":
                await pilot.press("enter")
                await until(pilot, lambda: isinstance(app.screen, JobsScreen))
            elif view != "apis":
                app.push_screen(JobScreen(tui_stub.API, view))
                await until(pilot, lambda: getattr(app.screen, "job", None) is not None)
            overflow, keys = await help_of(app, pilot)
            assert overflow == 0, (view, keys)
            assert keys.count("esc") == 1 and "escape" not in keys  # its own esc, once
            assert keys[-1] == "q"

    run(scenario, size=NARROW)


async def job_view(app: CortexApp, pilot: Pilot[None], job_id: str) -> JobScreen:
    """Open a job's view and return it once it shows the job and its failed batches."""
    view = JobScreen(tui_stub.API, job_id)
    app.push_screen(view)
    await until(pilot, lambda: view.job is not None and view.failed_batches != [])
    await pilot.pause(0.1)
    return view


def test_the_failed_batches_read_whole_with_the_error_last() -> None:
    async def scenario(app: CortexApp, pilot: Pilot[None]) -> None:
        view = await job_view(app, pilot, tui_stub.FAILED)
        header, row = shown(view.query_one("#ledger", KeyedTable)).splitlines()[:2]
        assert header.split() == ["BATCH", "ITEMS", "WORKER", "FAILED", "AT", "ERROR"]
        batch = tui_stub.FAILED_BATCHES[0]
        time_of_day = local_time(batch["failed_time"]).split()[1]
        assert row.split()[:4] == ["0", "0-9", "w1", time_of_day]
        assert row.rstrip().endswith(batch["error"])
        await pilot.resize_terminal(160, 48)  # wide again: every column, the date too
        await until(pilot, lambda: "ATTEMPTS" in shown(view.query_one("#ledger", KeyedTable)))
        assert local_time(batch["failed_time"]) in shown(view.query_one("#ledger", KeyedTable))

    run(scenario, size=NARROW)


def test_the_progress_legend_keeps_to_one_line() -> None:
    async def scenario(app: CortexApp, pilot: Pilot[None]) -> None:
        view = await job_view(app, pilot, tui_stub.RUNNING)
        _, legend = shown(view.query_one("#bar", Static)).splitlines()  # nothing wrapped
        assert legend.split() == [
            *("■", "succeeded", "120", "■", "failed", "3", "■", "in", "flight", "4"),
            *("■", "to", "do", "273", "123/400", "done,", "31%"),
        ]

    run(scenario, size=NARROW)


def test_the_logs_status_keeps_to_one_line() -> None:
    async def scenario(app: CortexApp, pilot: Pilot[None]) -> None:
        view = LogsScreen(tui_stub.API, tui_stub.FAILED)
        app.push_screen(view)
        await until(pilot, lambda: bool(view.query("#status")))
        status = view.query_one("#status", Static)

        def parts() -> list[str]:
            return [part.strip() for part in shown(status).split(" · ")]

        await until(pilot, lambda: "ended" in shown(status) and not view._buffer)
        lines = len(tui_stub.log_text().splitlines())
        assert parts() == [
            f"{lines}/{lines} lines",
            "worker all",
            "follow on",
            "job ended",
        ]
        await pilot.press("right_square_bracket", "right_square_bracket", "f")
        await pilot.press("slash", *"fail_items", "enter")
        await until(pilot, lambda: "/fail_items: 1/1" in parts())
        w0 = tui_stub.log_text().count("[w0]")
        assert parts() == [
            *(f"{w0}/{lines} lines", "worker w0", "follow off (f)", "/fail_items: 1/1"),
            "job ended",
        ]
        assert status.size.height == 1

    run(scenario, size=NARROW)


async def footer_keys(app: CortexApp, pilot: Pilot[None]) -> list[tuple[str, str]]:
    """Return the keys the footer in view offers (but the palette's), with what each does."""
    await until(pilot, lambda: bool(app.screen.query("FooterKey")))
    await pilot.pause(0.1)
    keys = app.screen.query("FooterKey").exclude(".-command-palette")
    assert all(key.region.bottom == app.size.height for key in keys)  # on the bottom line
    return [(key.key, key.description) for key in keys]  # type: ignore[attr-defined]


def test_the_stop_dialogs_footer_offers_its_own_keys() -> None:
    async def scenario(app: CortexApp, pilot: Pilot[None]) -> None:
        await job_view(app, pilot, tui_stub.RUNNING)
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert await footer_keys(app, pilot) == [("y", "Confirm"), ("n", "Cancel")]

    run(scenario, size=NARROW)


def test_the_filters_footer_says_what_enter_and_escape_do_there() -> None:
    async def scenario(app: CortexApp, pilot: Pilot[None]) -> None:
        await pilot.press("slash")
        await until(pilot, lambda: isinstance(app.focused, ListFilter))
        assert await footer_keys(app, pilot) == [
            ("enter", "Back to list"),
            ("escape", "Clear filter"),
        ]
        await pilot.press("t", "e", "s", "t", "/", "enter")
        assert isinstance(app.focused, KeyedTable)
        assert app.screen.query_one(ListFilter).value == "test/"
        assert ("slash", "Filter") in await footer_keys(app, pilot)

    run(scenario, size=NARROW)


class HeldJob(Recorded):
    """Answers the running job's status only once released."""

    def __init__(self) -> None:
        super().__init__()
        self.released = threading.Event()

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == f"/{tui_stub.API}/{tui_stub.RUNNING}":
            self.released.wait(20)
        return super().handler(request)


def test_the_footer_drops_retry_once_the_job_turns_out_to_be_running() -> None:
    recorded = HeldJob()

    async def scenario(app: CortexApp, pilot: Pilot[None]) -> None:
        view = JobScreen(tui_stub.API, tui_stub.RUNNING)
        app.push_screen(view)
        before = await offered(app, pilot)  # before the job is known: both offered
        recorded.released.set()
        await until(pilot, lambda: view.job is not None)
        await pilot.pause(0.2)
        after = await offered(app, pilot)
        assert {"s", "R"} <= set(before)
        assert "s" in after and "R" not in after and "t" in after

    run(scenario, size=NARROW, recorded=recorded)


def test_the_throughput_title_keeps_to_one_line() -> None:
    ticks = Ticks()

    async def scenario(app: CortexApp, pilot: Pilot[None]) -> None:
        view = await job_view(app, pilot, tui_stub.RUNNING)
        for done in (130, 141, 150):
            ticks.now += 2
            view.show({"job": tui_stub.running_job(done), "failed_batches": None, "failed": 3})
        await pilot.pause(0.1)
        title = view.query_one("#spark-title", Static)
        assert shown(title).strip() == "Throughput: batches/s last 5m (now 5.00, peak 5.50)"

    run(scenario, size=NARROW, ticks=ticks)
