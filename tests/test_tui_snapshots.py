"""SVG snapshots of each view, from recorded responses with fixed ids and clocks."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from textual.pilot import Pilot

from cortex_tui.tui.job_screen import JobScreen
from cortex_tui.tui.logs_screen import LogsScreen
from cortex_tui.tui.results_screen import ResultsScreen
from tests import tui_stub
from tests.tui_stub import Ticks, stub_app

SIZE = (160, 48)


@pytest.fixture(autouse=True)
def utc() -> Iterator[None]:
    """Show local times as UTC, whatever the machine's zone."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


async def settle(pilot: Pilot[Any]) -> None:
    await pilot.pause(0.2)
    await pilot.wait_for_scheduled_animations()


def test_apis_view(snap_compare: Any) -> None:
    assert snap_compare(stub_app(), terminal_size=SIZE, run_before=settle)


def test_jobs_view(snap_compare: Any) -> None:
    assert snap_compare(stub_app(), press=["enter"], terminal_size=SIZE, run_before=settle)


def test_job_view(snap_compare: Any) -> None:
    ticks = Ticks()

    async def run_before(pilot: Pilot[Any]) -> None:
        pilot.app.push_screen(JobScreen(tui_stub.API, tui_stub.RUNNING))
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, JobScreen)
        for done in (130, 141, 150, 158, 170, 185, 196, 204):
            ticks.now += 2
            screen.show({"job": tui_stub.running_job(done), "failed_batches": None, "failed": 3})
        await settle(pilot)

    assert snap_compare(stub_app(ticks), terminal_size=SIZE, run_before=run_before)


def test_logs_view_with_search(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        pilot.app.push_screen(LogsScreen(tui_stub.API, tui_stub.FAILED))
        screen = pilot.app.screen
        for _ in range(50):
            await pilot.pause(0.05)
            if isinstance(screen, LogsScreen) and screen.stream_state == "ended":
                break
        await pilot.press("slash")
        await pilot.pause(0.1)
        await pilot.press(*"fail_items", "enter")
        await settle(pilot)

    assert snap_compare(stub_app(), terminal_size=SIZE, run_before=run_before)


def test_stop_confirmation(snap_compare: Any) -> None:
    assert snap_compare(
        stub_app(), press=["enter", "_", "s"], terminal_size=SIZE, run_before=settle
    )


def test_submit_form(snap_compare: Any) -> None:
    assert snap_compare(stub_app(), press=["n"], terminal_size=SIZE, run_before=settle)


def test_help(snap_compare: Any) -> None:
    assert snap_compare(
        stub_app(), press=["enter", "_", "question_mark"], terminal_size=SIZE, run_before=settle
    )


def test_command_palette_offers_every_action_of_the_view() -> None:
    async def scenario() -> None:
        app = stub_app()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("enter")
            await pilot.pause(0.2)
            names = {command.title for command in app.get_system_commands(app.screen)}
            assert {"Open", "Stop job", "Logs", "Submit job", "Refresh", "Back"} <= names
            app.push_screen(LogsScreen(tui_stub.API, tui_stub.FAILED))
            await pilot.pause(0.2)
            names = {command.title for command in app.get_system_commands(app.screen)}
            assert {"Follow", "Search", "Worker", "Wrap", "Timestamps", "Next match"} <= names
            wrap = next(c for c in app.get_system_commands(app.screen) if c.title == "Wrap")
            await wrap.callback()  # type: ignore[misc]
            assert app.screen.query_one("LogView").wrap  # type: ignore[attr-defined]
        app.client.close()

    asyncio.run(scenario())


# --- 80x24: the narrow layouts -----------------------------------------------------------

NARROW = (80, 24)


def test_apis_view_80x24(snap_compare: Any) -> None:
    assert snap_compare(stub_app(), terminal_size=NARROW, run_before=settle)


def test_jobs_view_80x24(snap_compare: Any) -> None:
    assert snap_compare(stub_app(), press=["enter"], terminal_size=NARROW, run_before=settle)


def test_jobs_view_read_only_80x24(snap_compare: Any) -> None:
    assert snap_compare(
        stub_app(readonly=True), press=["enter"], terminal_size=NARROW, run_before=settle
    )


def test_job_view_80x24(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        pilot.app.push_screen(JobScreen(tui_stub.API, tui_stub.RUNNING))
        await settle(pilot)

    assert snap_compare(stub_app(), terminal_size=NARROW, run_before=run_before)


def test_submit_form_80x24(snap_compare: Any) -> None:
    assert snap_compare(stub_app(), press=["n"], terminal_size=NARROW, run_before=settle)


def test_results_view_80x24(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        pilot.app.push_screen(ResultsScreen(tui_stub.API, tui_stub.DONE))
        screen = pilot.app.screen
        for _ in range(50):
            await pilot.pause(0.05)
            if isinstance(screen, ResultsScreen) and screen.state == "done":
                break
        await pilot.press("n")
        await settle(pilot)

    assert snap_compare(stub_app(), terminal_size=NARROW, run_before=run_before)
