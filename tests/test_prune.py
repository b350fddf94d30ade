"""Deleting an API keeps its jobs readable unless purged, asks first, and prune reclaims
disk (ended jobs, their logs, unused snapshots, database space) without touching what runs.

Against the real orchestrator and worker processes (process backend), through the CLI.
"""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import Server, items_job, make_project

from cortex_tui.cli.main import main

ECHO = """
class PythonPredictor:
    def __init__(self, config):
        self.sleep_s = float(config.get("sleep_s", 0))

    def predict(self, payload):
        import time
        time.sleep(self.sleep_s)
        print(f"echo {len(payload)} items", flush=True)
        return payload
"""


@dataclass
class Run:
    code: int
    out: str
    err: str


Cli = Callable[..., Run]


class _Terminal(io.StringIO):
    """A stdin that is a terminal, with the user's answers already typed."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def cli(server: Server, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """Run ``cortex-tui --server <the test server> ARGS`` in-process; stdin is no terminal."""
    assert server.token is not None
    monkeypatch.setenv("CORTEX_TUI_TOKEN", server.token)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))

    def run(*args: str) -> Run:
        code = main(["--server", server.url, *args])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def echo(server: Server, tmp_path: Path) -> Path:
    """Deploy a one-API project, ``echo``; return its directory."""
    project = make_project(tmp_path / "projects", "echo", ECHO)
    server.deploy(project)
    return project


def finished_job(server: Server, items: list[object], batch_size: int = 1) -> str:
    """Run a job on ``echo`` to its end (and its workers' end); return its id."""
    job_id = str(server.submit("echo", items_job(items, batch_size))["job_id"])
    assert server.wait("echo", job_id)["status"] == "status_succeeded"
    server.wait_workers_gone("echo", job_id)
    return job_id


def running_job(server: Server) -> str:
    """Start a job on ``echo`` that runs for a minute; return its id once a worker runs."""
    job_id = str(server.submit("echo", items_job([1], config={"sleep_s": 60}))["job_id"])
    server.wait_for("echo", job_id, lambda s: s["worker_stats"]["running"] > 0, timeout=30)
    return job_id


def database_bytes(home: Path) -> int:
    return sum(f.stat().st_size for f in home.glob("cortex.db*") if not f.name.endswith("-shm"))


def test_delete_says_what_goes_and_refuses_without_a_terminal(
    server: Server, echo: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    finished_job(server, ["a", "b"])

    refused = cli("delete", "echo")

    assert refused.code == 1
    assert refused.out.startswith("deleting echo:\n  Its 1 job (")
    assert "stays readable; `cortex-tui prune` or `delete echo --purge` removes it." in refused.out
    assert refused.err == (
        "error: not done: `cortex-tui delete echo` asks for confirmation and stdin is not a"
        " terminal; run `cortex-tui delete echo --yes` to go ahead without asking\n"
    )
    monkeypatch.setattr("sys.stdin", _Terminal("n\n"))
    said_no = cli("delete", "echo")
    assert (said_no.code, said_no.err) == (1, "delete echo? [y/N] nothing was changed\n")
    assert [api["name"] for api in server.http.get("/_cortex/apis").json()["apis"]] == ["echo"]


def test_a_deleted_apis_jobs_stay_readable_and_survive_a_redeploy(
    server: Server, echo: Path, cli: Cli
) -> None:
    job = finished_job(server, ["a", "b"])
    running = running_job(server)

    deleted = cli("delete", "echo", "--yes")

    assert deleted.code == 0, deleted.err
    assert "Its 1 job running will be stopped." in deleted.out
    assert deleted.out.endswith("deleted echo; its 2 jobs stay readable\n")
    stopped = server.wait_workers_gone("echo", running)
    assert (stopped["status"], stopped["message"]) == ("status_stopped", "api echo was deleted")
    assert server.http.post("/echo", json=items_job([1])).status_code == 404
    assert cli("get").out.startswith("no apis are deployed")
    for _ in ("before", "after a redeploy"):
        results = cli("results", "echo", job).out.splitlines()
        assert [json.loads(line)["result"] for line in results] == ["a", "b"]
        assert "succeeded" in cli("get", "echo", job).out
        assert "echo 1 items" in cli("logs", "echo", job).out
        assert server.status("echo", job)["status"] == "status_succeeded"
        assert server.deploy(echo)["apis"][0]["result"] in ("created", "up_to_date")
    assert finished_job(server, ["c"]) != job


def test_purge_removes_the_jobs_with_their_logs(server: Server, echo: Path, cli: Cli) -> None:
    job = finished_job(server, ["a"])
    assert cli("delete", "echo", "--yes").code == 0
    twice = cli("delete", "echo", "--yes")
    assert twice.err.startswith("error: echo was already deleted at ")
    assert twice.err.endswith("(remove them with: cortex-tui delete echo --purge)\n")

    purged = cli("delete", "echo", "--purge", "--yes")

    assert purged.code == 0, purged.err
    assert purged.out.splitlines()[-1] == "deleted echo and purged its 1 job"
    assert server.http.get(f"/echo/{job}").status_code == 404
    assert not (server.home / "logs" / job).exists()
    again = cli("delete", "echo", "--yes")
    assert again.err.startswith('error: api "echo" is not deployed')


def test_prune_dry_run_changes_nothing_then_prune_reclaims_all_but_what_runs(
    server: Server, echo: Path, cli: Cli
) -> None:
    old = finished_job(server, ["x" * 2000] * 300, batch_size=30)  # ~1.2 MB in the database
    first_version = next((server.home / "apis" / "echo").iterdir())
    (echo / "predictor.py").write_text(ECHO + "\n# a new version\n")
    assert server.deploy(echo)["apis"][0]["result"] == "updated"
    running = running_job(server)

    dry = cli("prune", "--dry-run")

    assert dry.code == 0, dry.err
    assert "  jobs: 1 job that ended (echo 1): 1.2 MB of items and results" in dry.out
    assert "  snapshots no API version in use needs: 1," in dry.out
    assert server.status("echo", old)["status"] == "status_succeeded"
    assert (server.home / "logs" / old).is_dir() and first_version.is_dir()
    recent = cli("prune", "--older-than", "1h", "--yes")
    assert recent.out.startswith("removed:\n  jobs: 0 jobs that ended: 0 B"), recent.err
    assert server.status("echo", old)["status"] == "status_succeeded"
    assert not first_version.exists()
    before = database_bytes(server.home)

    pruned = cli("prune", "--yes")

    assert pruned.code == 0, pruned.err
    assert pruned.out.startswith("removed:\n  jobs: 1 job that ended (echo 1)")
    assert server.http.get(f"/echo/{old}").status_code == 404
    assert not (server.home / "logs" / old).exists()
    assert database_bytes(server.home) < before - 1_000_000
    assert server.status("echo", running)["status"] == "status_running"
    assert (server.home / "logs" / running).is_dir()
    assert server.http.delete(f"/echo/{running}").status_code == 200
    server.wait_workers_gone("echo", running)


def test_prune_refuses_without_a_terminal_and_a_bad_duration(server: Server, cli: Cli) -> None:
    refused = cli("prune")
    assert refused.code == 1
    assert refused.err.startswith("error: not done: `cortex-tui prune` asks for confirmation")
    bad = cli("prune", "--older-than", "soon")
    assert bad.err == (
        "error: --older-than soon: give a number and a unit: s, m, h, d or w (e.g. 30d, 12h)\n"
    )


def test_a_database_from_before_deleted_apis_gains_the_column(tmp_path: Path) -> None:
    from orchestrator.store.engine import Store

    db = tmp_path / "cortex.db"
    Store(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE api DROP COLUMN deleted_time")
    conn.close()

    Store(db).close()

    with sqlite3.connect(db) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(api)")}
    conn.close()
    assert "deleted_time" in columns


def test_the_tuis_delete_dialog_says_what_goes_with_the_api(server: Server, echo: Path) -> None:
    import asyncio

    from textual.widgets import Static

    from cortex_tui.client import CortexClient
    from cortex_tui.tui import CortexApp
    from cortex_tui.tui.confirm_screen import ConfirmScreen
    from cortex_tui.tui.keyed_table import KeyedTable

    finished_job(server, ["a"])
    app = CortexApp(CortexClient(server.url, timeout=10, token=server.token), refresh_s=0.5)

    async def until(condition: Callable[[], bool]) -> None:
        for _ in range(400):
            if condition():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"not true after 20s: screen {app.screen!r}")

    async def delete_and_cancel() -> str:
        async with app.run_test(size=(160, 48)) as pilot:
            await until(lambda: "echo" in app.screen.query_one(KeyedTable)._keys)
            await pilot.press("x")
            await until(lambda: isinstance(app.screen, ConfirmScreen))
            said = str(app.screen.query_one("#consequence", Static).render())
            await pilot.press("n")
            return said

    try:
        said = asyncio.run(delete_and_cancel())
    finally:
        app.client.close()

    assert said.startswith("Its 1 job (")
    assert "of logs) stays readable; `cortex-tui prune` or `delete echo --purge`" in said
    assert [api["name"] for api in server.http.get("/_cortex/apis").json()["apis"]] == ["echo"]


@pytest.mark.docker
def test_only_this_homes_api_images_that_nothing_runs_from_are_removed(tmp_path: Path) -> None:
    import dockerkit

    dockerkit.require_engine()
    from orchestrator.backends.docker.backend import DockerBackend
    from orchestrator.settings import Settings

    api = f"prune-{tmp_path.name[-12:].lower().replace('_', '-')}"
    ours, foreign, in_use = (f"cortex-tui-api/{api}:{c * 16}" for c in "abc")
    client = dockerkit.client()
    backend = DockerBackend(Settings(home=tmp_path / "home"))
    container = None
    try:
        for tags, marker in (((ours, foreign), "1"), ((in_use,), "2")):
            dockerfile = f'FROM scratch\nLABEL cortex-tui.image=api\nCMD ["{marker}"]\n'
            image, _ = client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tags[0])
            for tag in tags[1:]:
                image.tag(tag)
        for tag in (ours, in_use):  # this home built these two (it has their build logs)
            log = tmp_path / "home" / "builds" / api / f"{tag.rpartition(':')[2]}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text("built\n")
        container = client.containers.create(in_use)
        unsure = (api, {"predictor": {"image": "no-such-base:none"}}, tmp_path / "gone")

        assert backend.unused_images([unsure]) == []  # its image cannot be named: keep all
        assert sorted(i["image"] for i in backend.unused_images([])) == [ours, in_use]
        assert backend.remove_image(ours) is None
        assert "container" in str(backend.remove_image(in_use))

        left = {
            tag for image in client.images.list(name=f"cortex-tui-api/{api}") for tag in image.tags
        }
        assert left == {foreign, in_use}
        assert not (tmp_path / "home" / "builds" / api / f"{'a' * 16}.log").exists()
    finally:
        if container is not None:
            container.remove(force=True)
        for tag in (ours, foreign, in_use):
            with contextlib.suppress(Exception):
                client.images.remove(tag, force=True)
        backend.close()
        client.close()
