"""The real ``cortex-tui`` binary in tmux at 160x48, against a real server with a running job."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.conftest import ROOT, Server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


@pytest.fixture
def backend() -> str:
    """The TUI is tested against the process backend (the lifecycle suite covers the rest)."""
    return "process"


class Tmux:
    """One detached tmux session running a command."""

    def __init__(self, name: str, command: str) -> None:
        self.name = name
        # A private server (-L) without a config (-f): nobody else's sessions or options
        # can resize the window.
        self.tmux = ["tmux", "-L", name, "-f", os.devnull]
        size = ["-x", "160", "-y", "48"]
        subprocess.run([*self.tmux, "new-session", "-d", "-s", name, *size, "cat"], check=True)
        # The command starts once the window has its size, so it reads 160x48 at start.
        subprocess.run([*self.tmux, "respawn-pane", "-k", "-t", name, command], check=True)

    def keys(self, *keys: str) -> None:
        for key in keys:
            subprocess.run([*self.tmux, "send-keys", "-t", self.name, key], check=True)
            time.sleep(0.15)

    def screen(self) -> str:
        return subprocess.run(
            [*self.tmux, "capture-pane", "-p", "-t", self.name],
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def wait_for(self, text: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not on screen after {timeout}s:\n{screen}")
            time.sleep(0.2)

    def kill(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], check=False)


@pytest.fixture
def tmux_app(server: Server, testbench: str) -> Iterator[Tmux]:
    env = {
        "PYTHONPATH": str(ROOT),
        "CORTEX_TUI_HOME": str(server.home),
        "TERM": "xterm-256color",
    }
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    # The test process may export COLUMNS and LINES (headless Textual runs do), which would
    # override the pane's real size: the app must see the terminal's 160x48.
    command = (
        f"cd {shlex.quote(str(ROOT))} && env -u COLUMNS -u LINES {exports}"
        f" {shlex.quote(sys.executable)} -m cortex_tui --server {server.url} --refresh 0.5"
    )
    session = Tmux(f"cortex-tui-e2e-{os.getpid()}", command)
    yield session
    session.kill()


def test_watch_a_running_job_read_its_logs_and_stop_it(
    server: Server, testbench: str, tmux_app: Tmux
) -> None:
    body = {
        "workers": 2,
        "item_list": {"items": list(range(60)), "batch_size": 1},
        "config": {"sleep_s": 0.3},
    }
    job_id = server.submit(testbench, body)["job_id"]
    try:
        drive(server, testbench, job_id, tmux_app)
    finally:
        server.http.delete(f"/{testbench}/{job_id}")
        server.wait(testbench, job_id)


def drive(server: Server, testbench: str, job_id: str, tmux_app: Tmux) -> None:
    screen = tmux_app.wait_for("Quit")  # the footer's key hints
    screen = tmux_app.wait_for("testbench")
    assert "NAME" in screen and "RUNNING JOBS" in screen and "Help" in screen
    tmux_app.keys("Enter")
    screen = tmux_app.wait_for(job_id)
    assert "running" in screen
    tmux_app.keys("Enter")
    # The job's numbers arrive with its first poll, after the screen's frame is drawn.
    screen = tmux_app.wait_for("in flight")
    screen = tmux_app.wait_for("Failed batches")
    assert "worker stats" in screen
    tmux_app.keys("l")
    screen = tmux_app.wait_for("[w1]")
    assert "[orchestrator]" in screen and "streaming" in screen
    tmux_app.keys("Escape", "s")
    screen = tmux_app.wait_for("results so far are kept")
    assert "batches not yet done" in screen
    tmux_app.keys("y")
    tmux_app.wait_for("stopped")
    assert server.wait(testbench, job_id)["status"] == "status_stopped"
    tmux_app.keys("q")
