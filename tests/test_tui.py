"""The TUI against a real orchestrator running real jobs on the process backend."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from cortex_tui.client import CortexClient
from cortex_tui.tui import CortexApp
from cortex_tui.tui.apis_screen import ApisScreen
from cortex_tui.tui.confirm_screen import ConfirmScreen
from cortex_tui.tui.deploy_screen import DeployScreen
from cortex_tui.tui.job_screen import JobScreen
from cortex_tui.tui.jobs_screen import JobsScreen
from cortex_tui.tui.keyed_table import KeyedTable
from cortex_tui.tui.logs_screen import LogsScreen
from cortex_tui.tui.path_input import PathInput
from cortex_tui.tui.submit_screen import SubmitScreen
from tests.conftest import Server
from tests.tui_stub import shown, until

SIZE = (160, 48)


@pytest.fixture
def backend() -> str:
    """The TUI is tested against the process backend (the lifecycle suite covers the rest)."""
    return "process"


def run_async(test: Callable[..., Coroutine[None, None, None]]) -> Callable[..., None]:
    """Run an async test in its own event loop (the suite has no async plugin)."""

    @functools.wraps(test)
    def wrapper(*args: object, **kwargs: object) -> None:
        asyncio.run(test(*args, **kwargs))

    return wrapper


def make_app(server: Server, readonly: bool = False) -> CortexApp:
    client = CortexClient(server.url, timeout=10, token=server.token)
    return CortexApp(client, readonly=readonly, refresh_s=0.5)


@contextlib.asynccontextmanager
async def running(app: CortexApp) -> AsyncIterator[Pilot[None]]:
    """Run the app headless at 160x48, then close its client."""
    try:
        async with app.run_test(size=SIZE) as pilot:
            yield pilot
    finally:
        app.client.close()


def table_keys(app: CortexApp) -> list[str]:
    return list(app.screen.query_one(KeyedTable)._keys)


def slow_job(server: Server, api: str, items: int = 40, **config: object) -> str:
    body = {
        "workers": 1,
        "item_list": {"items": list(range(items)), "batch_size": 1},
        "config": {"sleep_s": 0.3, **config},
    }
    return str(server.submit(api, body)["job_id"])


def stop_quietly(server: Server, api: str, job_id: str) -> None:
    server.http.delete(f"/{api}/{job_id}")
    server.wait(api, job_id)


@pytest.mark.slow
@run_async
async def test_navigate_apis_jobs_detail_logs(server: Server, testbench: str) -> None:
    body = {
        "workers": 2,
        "item_list": {"items": [0, 1, 2, 3, 4, 5], "batch_size": 2},
        "config": {"fail_items": [3], "print_each": True},
    }
    job_id = server.submit(testbench, body)["job_id"]
    server.wait(testbench, job_id)
    app = make_app(server)
    async with running(app) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ApisScreen) and table_keys(app) != [])
        assert table_keys(app) == ["testbench"]
        await pilot.press("slash", *"nomatch")  # the filter
        await until(pilot, lambda: table_keys(app) == [])
        await pilot.press("escape")
        await until(pilot, lambda: table_keys(app) == ["testbench"])
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen) and table_keys(app) != [])
        assert table_keys(app) == [job_id]
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, JobScreen) and app.screen.job is not None)
        screen = app.screen
        assert isinstance(screen, JobScreen)
        summary = shown(screen.query_one("#summary", Static))
        await until(pilot, lambda: len(screen.failed_batches) == 1)
        ledger = screen.failed_batches[0]
        assert ledger["error"] == "ValueError: item 3 is in fail_items"
        bar = shown(screen.query_one("#bar", Static))
        assert "succeeded 2" in bar and "failed 1" in bar
        assert "completed with failures" in summary
        await pilot.press("t")  # the failed batch's traceback, one key away
        await pilot.pause(0.2)
        assert "raise ValueError" in shown(app.screen.query_one("#traceback", Static))
        await pilot.press("escape", "l")
        await until(pilot, lambda: isinstance(app.screen, LogsScreen))
        logs = app.screen
        assert isinstance(logs, LogsScreen)
        await until(pilot, lambda: logs.stream_state == "ended")
        workers = set(logs.view.worker_names)
        assert {"orchestrator", "w0", "w1"} <= workers
        assert any("item 3" in line.message for line in logs.view.lines)
        await pilot.press("slash", *"fails on item", "enter")
        await pilot.pause(0.2)
        assert len(logs.view.matches) == 1 and logs.view.current_match == 0
        assert logs.view.shown_count == len(logs.view.lines)  # search hides nothing
        await pilot.press("right_square_bracket", "right_square_bracket")
        assert logs.view.worker == "w0"
        assert logs.view.shown_count < len(logs.view.lines)
        await pilot.press("escape", "escape")  # clear the search, then back
        assert isinstance(app.screen, JobScreen)


@pytest.mark.slow
@run_async
async def test_stop_with_confirmation(server: Server, testbench: str) -> None:
    job_id = slow_job(server, testbench)
    server.wait(testbench, job_id, {"status_running"})
    app = make_app(server)
    async with running(app) as pilot:
        await until(pilot, lambda: table_keys(app) != [])
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen) and table_keys(app) != [])
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        text = shown(app.screen.query_one("#consequence", Static))
        assert "batches not yet done; results so far are kept" in text
        await pilot.press("y")
        await until(pilot, lambda: server.status(testbench, job_id)["status"] == "status_stopped")
        jobs = app.screen
        assert isinstance(jobs, JobsScreen)
        await until(pilot, lambda: jobs.jobs[0]["status"] == "status_stopped")
        status_cell = jobs.query_one(KeyedTable).get_cell(job_id, "status")
        assert str(status_cell) == "stopped"


@pytest.mark.slow
@run_async
async def test_submit_through_the_form(server: Server, testbench: str, tmp_path: Path) -> None:
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps({"n": n}) + "\n" for n in range(5)))
    app = make_app(server)
    async with running(app) as pilot:
        await until(pilot, lambda: table_keys(app) != [])
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, SubmitScreen))
        await pilot.press(*str(items))
        form = app.screen
        form.query_one("#batch_size").value = "2"  # type: ignore[attr-defined]
        form.query_one("#workers").value = "2"  # type: ignore[attr-defined]
        form.query_one("#config").value = "sleep_s=0.1 note=tui"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, JobScreen))
        job_screen = app.screen
        assert isinstance(job_screen, JobScreen)
        status = server.wait(testbench, job_screen.job_id)
        assert status["status"] == "status_succeeded"
        assert status["batch_metrics"]["total"] == 3
        assert status["workers"] == 2
        assert status["config"]["note"] == "tui"


@pytest.mark.slow
@run_async
async def test_readonly_refuses_to_stop(server: Server, testbench: str) -> None:
    job_id = slow_job(server, testbench)
    server.wait(testbench, job_id, {"status_running"})
    app = make_app(server, readonly=True)
    try:
        async with running(app) as pilot:
            await until(pilot, lambda: table_keys(app) != [])
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, JobsScreen) and table_keys(app) != [])
            await pilot.press("s")
            await pilot.pause(0.3)
            assert isinstance(app.screen, JobsScreen)  # no confirmation dialog
            messages = [n.message for n in app._notifications]
            assert any("read-only" in m for m in messages)
            assert server.status(testbench, job_id)["status"] == "status_running"
    finally:
        stop_quietly(server, testbench, job_id)


@pytest.mark.slow
@run_async
async def test_server_down_shows_banner_and_reconnects(server: Server, testbench: str) -> None:
    app = make_app(server)
    async with running(app) as pilot:
        await until(pilot, lambda: table_keys(app) != [])
        server.stop()
        banner = app.screen.query_one("ConnectionBanner")
        await until(pilot, lambda: banner.has_class("-shown"))
        assert "retrying" in shown(banner)
        assert "start it with: cortex-tui up" in shown(banner)
        await pilot.press("down", "up")  # still responsive
        server.start()
        await until(pilot, lambda: not banner.has_class("-shown"))


@pytest.mark.slow
@run_async
async def test_after_a_submit_from_the_jobs_list_the_new_job_is_selected(
    server: Server, testbench: str, tmp_path: Path
) -> None:
    old = server.submit(testbench, {"item_list": {"items": [1], "batch_size": 1}})["job_id"]
    server.wait(testbench, old)
    items = tmp_path / "items.json"
    items.write_text(json.dumps([1, 2]))
    app = make_app(server)
    async with running(app) as pilot:
        await until(pilot, lambda: table_keys(app) != [])
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen) and table_keys(app) == [old])
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, SubmitScreen))
        await pilot.press(*str(items))
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, JobScreen))
        new = app.screen.job_id  # type: ignore[attr-defined]

        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen) and new in table_keys(app))

        assert app.screen.query_one(KeyedTable).selected_key == new


@pytest.mark.slow
@run_async
async def test_the_deploy_dialog_says_what_is_wrong_with_the_path(
    server: Server, tmp_path: Path
) -> None:
    app = make_app(server)
    async with running(app) as pilot:
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, DeployScreen))
        result = app.screen.query_one("#result", Static)
        for path, says in (
            ("/nonexistent/dir", "/nonexistent/dir: no such directory"),
            (str(tmp_path), f"cortex.yaml: file not found: {tmp_path / 'cortex.yaml'}"),
        ):
            app.screen.query_one(PathInput).value = path
            await pilot.press("enter")
            # As the CLI says it, however the dialog wraps it (a long path wraps mid-word).
            await until(pilot, lambda says=says: _unwrapped(says) in _unwrapped(shown(result)))


def _unwrapped(text: str) -> str:
    return "".join(text.split())
