"""Pilot tests of the TUI over recorded responses: fast, and free to change the data."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from textual.geometry import Region
from textual.pilot import Pilot
from textual.widget import Widget

from cortex_tui.tui import CortexApp
from cortex_tui.tui.apis_screen import ApisScreen
from cortex_tui.tui.deploy_screen import DeployScreen
from cortex_tui.tui.keyed_table import KeyedTable
from tests import tui_stub
from tests.tui_stub import Recorded, stub_app

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


async def until(pilot: Pilot[None], condition: Callable[[], bool], timeout: float = 5) -> None:
    """Let the app run until ``condition()`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"not true after {timeout}s: screen {pilot.app.screen!r}")
        await pilot.pause(0.05)


def shown(widget: Widget) -> str:
    """Return the text a widget shows on screen."""
    region = Region(0, 0, widget.size.width, widget.size.height)
    return "\n".join(strip.text for strip in widget.render_lines(region))


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
