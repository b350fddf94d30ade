"""Pilot tests of the TUI over recorded responses: fast, and free to change the data."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from textual import events
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from cortex_tui.tui import CortexApp
from cortex_tui.tui.apis_screen import ApisScreen
from cortex_tui.tui.confirm_screen import ConfirmScreen
from cortex_tui.tui.deploy_screen import DeployScreen
from cortex_tui.tui.help_screen import HelpScreen
from cortex_tui.tui.job_screen import JobScreen
from cortex_tui.tui.jobs_screen import JobsScreen
from cortex_tui.tui.keyed_table import KeyedTable
from cortex_tui.tui.list_filter import ListFilter
from cortex_tui.tui.logs_screen import LogsScreen
from cortex_tui.tui.results_screen import ResultsScreen
from tests import tui_stub
from tests.tui_stub import Recorded, shown, stub_app, until

SIZE = (160, 48)
Scenario = Callable[[CortexApp, Pilot[None]], Coroutine[None, None, None]]


def run(scenario: Scenario, size: tuple[int, int] = SIZE, **options: Any) -> None:
    """Run ``scenario`` against the stub app, headless."""

    async def main() -> None:
        app = stub_app(**options)
        try:
            async with app.run_test(size=size) as pilot:
                await until(pilot, lambda: app.screen.query(KeyedTable).first()._keys != [])
                await scenario(app, pilot)
        finally:
            app.client.close()

    asyncio.run(main())


def running_job(done: int, total: int) -> Any:
    return tui_stub.job(tui_stub.RUNNING, "status_running", done, 0, total, end_time=None)


def test_a_column_widens_for_values_that_came_while_a_dialog_covered_the_view() -> None:
    recorded = Recorded()
    recorded.apis["apis"][0]["latest_job"] = running_job(10, 10)

    async def scenario(app: CortexApp, pilot: Pilot[None]) -> None:
        apis = app.screen
        assert isinstance(apis, ApisScreen)
        table = apis.query_one(KeyedTable)
        await until(pilot, lambda: "10/10" in shown(table))
        await pilot.press("d")  # the deploy dialog: the list stays live behind it
        await until(pilot, lambda: isinstance(app.screen, DeployScreen))
        recorded.apis["apis"][0]["latest_job"] = running_job(18, 100)
        # A poll answers while the dialog is up, and the screen behind the dialog is painted
        # before the table has measured its new cell (done here at once, so every time).
        apis.show(app.client.list_apis())
        shown(table)
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is apis)
        await pilot.pause(0.3)
        assert "18/100 " in shown(table)

    run(scenario, recorded=recorded)


async def offered(app: CortexApp, pilot: Pilot[None]) -> list[str]:
    """Return the keys the footer offers (once it shows them), each wholly on screen."""
    await until(pilot, lambda: "q" in [key.key for key in app.screen.query("FooterKey")])  # type: ignore[attr-defined]
    keys = app.screen.query("FooterKey")
    assert all(key.region.right <= app.size.width for key in keys)
    return [key.key for key in keys]  # type: ignore[attr-defined]


def notifications(app: CortexApp) -> list[str]:
    return [notification.message for notification in app._notifications]


def test_read_only_hides_and_refuses_every_change() -> None:
    async def scenario(app: CortexApp, pilot: Pilot[None]) -> None:
        footer = await offered(app, pilot)
        assert {"n", "d", "x"}.isdisjoint(footer)
        assert {"slash", "q", "question_mark"} <= set(footer)
        for key in ("x", "d", "n"):
            await pilot.press(key)
            await pilot.pause(0.1)
            assert isinstance(app.screen, ApisScreen)  # no dialog, no form
        assert notifications(app) == [
            "read-only mode (--readonly): deleting an API is disabled",
            "read-only mode (--readonly): deploying is disabled",
            "read-only mode (--readonly): submitting a job is disabled",
        ]
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen))
        footer = await offered(app, pilot)
        assert {"s", "n"}.isdisjoint(footer) and "l" in footer
        palette = {command.title for command in app.get_system_commands(app.screen)}
        assert "Logs" in palette and {"Stop job", "Submit job"}.isdisjoint(palette)
        await pilot.press("s")
        await pilot.pause(0.1)
        assert isinstance(app.screen, JobsScreen)
        assert notifications(app)[-1] == "read-only mode (--readonly): stopping a job is disabled"
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, JobScreen))
        footer = await offered(app, pilot)
        assert {"s", "n"}.isdisjoint(footer) and "t" in footer
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.pause(0.1)
        help_text = "\n".join(shown(static) for static in app.screen.query(Static))
        assert "Traceback" in help_text and "Stop job" not in help_text
        assert "Read-only (--readonly)" in help_text
        assert "s stops" not in help_text and "R re-runs" not in help_text  # nor in its text

    run(scenario, readonly=True)


def test_without_read_only_the_same_keys_are_offered() -> None:
    async def scenario(app: CortexApp, pilot: Pilot[None]) -> None:
        assert {"n", "d", "x"} <= set(await offered(app, pilot))
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))

    run(scenario)


def test_the_jobs_list_filters_by_id_or_status_and_escape_clears() -> None:
    async def scenario(app: CortexApp, pilot: Pilot[None]) -> None:
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen) and len(keys(app)) == 3)
        await pilot.press("slash", *"WITH")
        assert keys(app) == [tui_stub.FAILED]
        assert "1 of 3 jobs" in str(app.screen.sub_title)
        await pilot.press("enter")  # back to the list, the filter kept
        assert isinstance(app.focused, KeyedTable) and keys(app) == [tui_stub.FAILED]
        await pilot.press("slash", *["backspace"] * 4, *"01")
        assert keys(app) == [tui_stub.DONE]
        await pilot.press("slash", *"zz")
        assert keys(app) == []
        assert "No job matches" in shown(app.screen.query_one("#empty", Static))
        await pilot.press("escape")
        assert len(keys(app)) == 3 and isinstance(app.screen, JobsScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, ApisScreen)

    run(scenario)


def keys(app: CortexApp) -> list[str]:
    return list(app.screen.query_one(KeyedTable)._keys)


def test_results_page_by_page_in_item_order_and_saved_whole(tmp_path: Path) -> None:
    recorded = Recorded()
    recorded.results = 20_000

    async def scenario(app: CortexApp, pilot: Pilot[None]) -> None:
        app.push_screen(JobScreen(tui_stub.API, tui_stub.DONE))
        await pilot.pause(0.1)
        await pilot.press("o")
        await until(pilot, lambda: isinstance(app.screen, ResultsScreen))
        results = app.screen
        assert isinstance(results, ResultsScreen)
        await until(pilot, lambda: results.state == "done")
        table = results.query_one(DataTable)
        assert table.row_count == 100  # one page, never all of them
        assert first_item(table) == "0"
        status = results.query_one("#status", Static)
        assert "results 1 to 100 of 20,000 · page 1 of 200 · all loaded" in shown(status)
        assert results.region.contains_region(status.region)  # not pushed off by the table
        await pilot.press("n", "n")
        assert first_item(table) == "200"
        await pilot.press("G")
        assert first_item(table) == "19900" and table.row_count == 100
        await pilot.press("p", "g")
        assert first_item(table) == "0"
        await pilot.press("s")
        saved = tmp_path / f"{tui_stub.API}-{tui_stub.DONE}-results.jsonl"
        await until(pilot, lambda: f"saved 20000 results to {saved}" in notifications(app))
        lines = saved.read_text().splitlines()
        assert len(lines) == 20_000
        assert [json.loads(line)["item_index"] for line in lines[:3]] == [0, 1, 2]

    run(scenario, recorded=recorded, save_dir=tmp_path)


def test_the_logs_view_saves_the_whole_log(tmp_path: Path) -> None:
    (tmp_path / f"{tui_stub.API}-{tui_stub.FAILED}.log").write_text("an older save\n")

    async def scenario(app: CortexApp, pilot: Pilot[None]) -> None:
        app.push_screen(LogsScreen(tui_stub.API, tui_stub.FAILED))
        await pilot.pause(0.1)
        await pilot.press("s")
        saved = tmp_path / f"{tui_stub.API}-{tui_stub.FAILED}-1.log"  # the older one is kept
        await until(pilot, lambda: any(str(saved) in line for line in notifications(app)))
        assert saved.read_text() == tui_stub.log_text()

    run(scenario, save_dir=tmp_path)


def first_item(table: DataTable[Any]) -> str:
    return str(table.get_row_at(0)[0])


def test_what_is_typed_right_after_the_slash_lands_in_the_filter() -> None:
    async def scenario(app: CortexApp, pilot: Pilot[None]) -> None:
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen) and len(keys(app)) == 3)
        for key in ("slash", "0", "1"):  # in one burst, as a fast typist or a paste sends them
            app.post_message(events.Key(key, "/" if key == "slash" else key))
        await until(pilot, lambda: keys(app) == [tui_stub.DONE])
        await pilot.press("slash")  # in the filter, / is just a character
        assert app.screen.query_one(ListFilter).value == "01/"

    run(scenario)


def test_each_view_polls_on_one_timer(monkeypatch: Any) -> None:
    from cortex_tui.tui.polled_screen import PolledScreen

    timers: list[str] = []
    set_interval = PolledScreen.set_interval

    def counted(self: PolledScreen, interval: float, callback: Any, **kwargs: Any) -> Any:
        if getattr(callback, "__name__", "") == "_tick":  # not Textual's own timers
            timers.append(type(self).__name__)
        return set_interval(self, interval, callback, **kwargs)

    monkeypatch.setattr(PolledScreen, "set_interval", counted)

    async def scenario(app: CortexApp, pilot: Pilot[None]) -> None:
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen))
        app.push_screen(JobScreen(tui_stub.API, tui_stub.RUNNING))
        await until(pilot, lambda: isinstance(app.screen, JobScreen))
        await pilot.pause(0.1)

    run(scenario)
    assert sorted(timers) == ["ApisScreen", "JobScreen", "JobsScreen"]
