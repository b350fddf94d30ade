"""The Python client (``from cortex_tui import Client``) against a real orchestrator, and the
README's example of it run as written."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLES, Server, free_port

from cortex_tui import ApiError, Client, CortexTuiError, InputError, ServerUnreachable, WaitTimeout
from cortex_tui.embedded import stop_embedded
from cortex_tui.progress import ProgressBar


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("client") / "home")
    server.home.mkdir()
    try:
        server.start()
        server.deploy(SAMPLES / "testbench")
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def client(server: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """A client found as a user's would be: the server's URL and home in the environment."""
    monkeypatch.setenv("CORTEX_TUI_SERVER", server.url)
    monkeypatch.setenv("CORTEX_TUI_HOME", str(server.home))
    monkeypatch.delenv("CORTEX_TUI_TOKEN", raising=False)
    with Client(start=False) as client:
        yield client


def readme_example() -> str:
    """Return the python block under the README's "## The Python client"."""
    readme = (ROOT / "README.md").read_text()
    section = readme.partition("\n## The Python client\n")[2].partition("\n## ")[0]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block, "README.md has no python example under '## The Python client'"
    return block.group(1)


def test_the_readme_example_runs_as_written(server: Server) -> None:
    env = {**os.environ, "CORTEX_TUI_SERVER": server.url, "CORTEX_TUI_HOME": str(server.home)}
    env.pop("CORTEX_TUI_TOKEN", None)
    done = subprocess.run(
        [sys.executable, "-c", readme_example()],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "status_completed_with_failures 2 1",
        "0 a",
        "1 b",
        "4 e",
        "failed batch 1 ['c', 'd'] ValueError: item 'd' is in fail_items",
        "status_succeeded",
    ]
    # progress=True where the bar cannot be redrawn: a line, ending with how the job ended.
    assert re.search(
        r"testbench \w+: 100%\|.*\| 3/3 batches \[completed with failures", done.stderr
    )


def test_results_come_in_item_order_from_every_kind_of_source(
    client: Client, server: Server
) -> None:
    items = [f"item-{n}" for n in range(7)]
    lines = server.home.parent / "items.jsonl"
    lines.write_text("".join(json.dumps(item) + "\n" for item in items))

    jobs = [
        client.submit("testbench", items=items, batch_size=3, workers=2),
        client.submit("testbench", jsonl=lines, batch_size=2),
        client.submit("testbench", delimited_files=lines, batch_size=4, workers=3),
    ]

    for job in jobs:
        assert job.wait(progress=False).ok
        results = list(job.results())
        assert [r["item_index"] for r in results] == list(range(7))
        assert [r["result"]["item"] for r in results] == items
        assert job.failed() == []
    assert client.job("testbench", jobs[-1].id[:10]).id == jobs[-1].id
    assert client.job("testbench").id == jobs[-1].id  # latest


def test_a_job_can_be_stopped_and_a_wait_can_give_up(client: Client) -> None:
    job = client.submit("testbench", items=[1, 2, 3], config={"sleep_s": 5})

    with pytest.raises(WaitTimeout, match="is still status_"):
        job.wait(timeout=0.5, progress=False)
    assert "stopped" in job.stop()
    status = job.wait(progress=False)

    assert status.status == "status_stopped" and status.done and not status.ok


def test_every_error_is_a_cortex_tui_error_with_a_message(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InputError, match="exactly one of items, jsonl, delimited_files"):
        client.submit("testbench", items=[1], jsonl="x.jsonl")
    with pytest.raises(InputError, match="no such file"):
        client.submit("testbench", jsonl=tmp_path / "missing.jsonl")
    with pytest.raises(ApiError, match="nope") as refused:
        client.submit("nope", items=[1])
    assert refused.value.status_code == 404
    with pytest.raises(ApiError, match="has no job"):
        client.job("testbench", "f" * 16)
    with pytest.raises(InputError, match="is not an API name or a job id"):
        client.job("testbench", "../../_cortex/apis")
    for unsendable in ({"items": [1, float("nan")]}, {"items": [1], "timeout": float("inf")}):
        with pytest.raises(InputError, match="holds NaN or infinity, which JSON cannot carry"):
            client.submit("testbench", **unsendable)  # type: ignore[arg-type]
    monkeypatch.setenv("CORTEX_TUI_SERVER", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ServerUnreachable):
        Client(start=False)
    assert issubclass(WaitTimeout, CortexTuiError) and issubclass(ApiError, CortexTuiError)


def test_client_starts_the_embedded_orchestrator_as_the_cli_does(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code = (
        "from cortex_tui import Client\n"
        "client = Client()\n"
        f"print(client.deploy({str(SAMPLES / 'testbench' / 'cortex.yaml')!r})[0]['result'])\n"
        "print(client.http.health()['home'])\n"
    )
    env = {**os.environ, "CORTEX_TUI_HOME": str(home), "PYTHONPATH": str(ROOT)}
    env["CORTEX_TUI_SERVER"] = f"http://127.0.0.1:{free_port()}"
    env.pop("CORTEX_TUI_TOKEN", None)
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
        )
    finally:
        stop_embedded(home)

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["created", str(home)]
    assert "started the embedded orchestrator" in done.stderr


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_redraws_in_place_on_a_terminal_and_prints_lines_elsewhere() -> None:
    terminal, log = Terminal(), io.StringIO()
    for stream in (terminal, log):
        bar = ProgressBar("api job", stream, width=10, interval=3600)
        bar.update(0, 4)
        bar.update(2, 4, failed=1)
        bar.close(bar.render(4, 4, 1, note="completed with failures"))

    assert terminal.getvalue().count("\r") == 3 and terminal.getvalue().endswith("\n")
    assert "\r" not in log.getvalue()
    assert log.getvalue().splitlines() == [  # the middle one came too soon after the first
        "api job:   0%|          | 0/4 batches [00:00<?, 0.00 batches/s]",
        "api job: 100%|██████████| 4/4 batches [completed with failures, 1 failed]",
    ]
    assert "api job:  50%|█████     | 2/4 batches [" in terminal.getvalue()
