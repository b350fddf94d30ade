"""Deleting an API keeps its jobs readable unless purged, asks first, and prune reclaims
disk (ended jobs, their logs, unused snapshots, database space) without touching what runs.

Against the real orchestrator and worker processes (process backend), through the CLI.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import conftest
import pytest
from conftest import Cli, Server, items_job, make_project

from cortex_tui import footprint
from orchestrator.auth import Credentials
from orchestrator.context import Context
from orchestrator.delivery import handlers
from orchestrator.errors import NotFound
from orchestrator.jobs import control, prune
from orchestrator.settings import Settings
from orchestrator.status import JobStatus
from orchestrator.store import api_queries, job_queries, prune_queries, worker_queries
from orchestrator.store.engine import Store
from orchestrator.store.models import Api

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


class _Terminal(io.StringIO):
    """A stdin that is a terminal, with the user's answers already typed."""

    def isatty(self) -> bool:
        return True


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
    server: Server, echo: Path, server_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    finished_job(server, ["a", "b"])

    refused = server_cli("delete", "echo")

    assert refused.code == 1
    assert refused.out.startswith("deleting echo:\n  Its 1 job (")
    assert "stays readable; `cortex-tui prune` or `delete echo --purge` removes it." in refused.out
    assert refused.err == (
        "error: not done: `cortex-tui delete echo` asks for confirmation and stdin is not a"
        " terminal; run `cortex-tui delete echo --yes` to go ahead without asking\n"
    )
    monkeypatch.setattr("sys.stdin", _Terminal("n\n"))
    said_no = server_cli("delete", "echo")
    assert (said_no.code, said_no.err) == (1, "delete echo? [y/N] nothing was changed\n")
    assert [api["name"] for api in server.http.get("/_cortex/apis").json()["apis"]] == ["echo"]


def test_a_deleted_apis_jobs_stay_readable_and_survive_a_redeploy(
    server: Server, echo: Path, server_cli: Cli
) -> None:
    job = finished_job(server, ["a", "b"])
    running = running_job(server)

    deleted = server_cli("delete", "echo", "--yes")

    assert deleted.code == 0, deleted.err
    assert "Its 1 job running will be stopped." in deleted.out
    assert deleted.out.endswith("deleted echo; its 2 jobs stay readable\n")
    stopped = server.wait_workers_gone("echo", running)
    assert (stopped["status"], stopped["message"]) == ("status_stopped", "api echo was deleted")
    assert server.http.post("/echo", json=items_job([1])).status_code == 404
    assert server_cli("get").out.startswith("no apis are deployed")
    for _ in ("before", "after a redeploy"):
        results = server_cli("results", "echo", job).out.splitlines()
        assert [json.loads(line)["result"] for line in results] == ["a", "b"]
        assert "succeeded" in server_cli("get", "echo", job).out
        assert "echo 1 items" in server_cli("logs", "echo", job).out
        assert server.status("echo", job)["status"] == "status_succeeded"
        assert server.deploy(echo)["apis"][0]["result"] in ("created", "up_to_date")
    assert finished_job(server, ["c"]) != job


def test_purge_removes_the_jobs_with_their_logs(
    server: Server, echo: Path, server_cli: Cli
) -> None:
    job = finished_job(server, ["a"])
    assert server_cli("delete", "echo", "--yes").code == 0
    twice = server_cli("delete", "echo", "--yes")
    assert twice.err.startswith("error: echo was already deleted at ")
    assert twice.err.endswith("(remove them with: cortex-tui delete echo --purge)\n")

    purged = server_cli("delete", "echo", "--purge", "--yes")

    assert purged.code == 0, purged.err
    assert purged.out.splitlines()[-1] == "deleted echo and purged its 1 job"
    assert server.http.get(f"/echo/{job}").status_code == 404
    assert not (server.home / "logs" / job).exists()
    again = server_cli("delete", "echo", "--yes")
    assert again.err.startswith('error: api "echo" is not deployed')


def test_prune_dry_run_changes_nothing_then_prune_reclaims_all_but_what_runs(
    server: Server, echo: Path, server_cli: Cli
) -> None:
    old = finished_job(server, ["x" * 2000] * 300, batch_size=30)  # ~1.2 MB in the database
    first_version = next((server.home / "apis" / "echo").iterdir())
    (echo / "predictor.py").write_text(ECHO + "\n# a new version\n")
    assert server.deploy(echo)["apis"][0]["result"] == "updated"
    running = running_job(server)

    dry = server_cli("prune", "--dry-run")

    assert dry.code == 0, dry.err
    assert "  jobs: 1 job that ended (echo 1): 1.2 MB of items and results" in dry.out
    assert "  snapshots no API version in use needs: 1," in dry.out
    assert server.status("echo", old)["status"] == "status_succeeded"
    assert (server.home / "logs" / old).is_dir() and first_version.is_dir()
    recent = server_cli("prune", "--older-than", "1h", "--yes")
    assert recent.out.startswith("removed:\n  jobs: 0 jobs that ended: 0 B"), recent.err
    assert server.status("echo", old)["status"] == "status_succeeded"
    assert not first_version.exists()
    before = database_bytes(server.home)

    pruned = server_cli("prune", "--yes")

    assert pruned.code == 0, pruned.err
    assert pruned.out.startswith("removed:\n  jobs: 1 job that ended (echo 1)")
    assert server.http.get(f"/echo/{old}").status_code == 404
    assert not (server.home / "logs" / old).exists()
    assert database_bytes(server.home) < before - 1_000_000
    assert server.status("echo", running)["status"] == "status_running"
    assert (server.home / "logs" / running).is_dir()
    assert server.http.delete(f"/echo/{running}").status_code == 200
    server.wait_workers_gone("echo", running)


def test_purging_an_api_with_a_running_job_leaves_it_until_its_workers_exit(
    server: Server, echo: Path, server_cli: Cli
) -> None:
    running = running_job(server)

    purged = server_cli("delete", "echo", "--purge", "--yes")

    assert purged.code == 0, purged.err
    assert purged.out.splitlines()[-1] == (
        "deleted echo and purged 0 of its 1 job; 1 still stopping: `cortex-tui prune` takes"
        " it once its workers exit"
    )
    stopped = server.wait_workers_gone("echo", running)
    assert (stopped["status"], stopped["message"]) == ("status_stopped", "api echo was deleted")
    assert server_cli("prune", "--yes").out.startswith(
        "removed:\n  jobs: 1 job that ended (echo 1)"
    )
    assert not (server.home / "logs" / running).exists()
    assert server_cli("delete", "echo", "--yes").err.startswith('error: api "echo" is not deployed')


class _AnswerYesAfter(_Terminal):
    """A terminal whose user does ``meanwhile`` before answering yes."""

    def __init__(self, meanwhile: Callable[[], object]) -> None:
        super().__init__("")
        self.meanwhile = meanwhile

    def readline(self, *_: object) -> str:
        self.meanwhile()
        return "y\n"


def test_prune_removes_no_job_that_ended_after_what_it_showed(
    server: Server, echo: Path, server_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown = finished_job(server, ["a"])
    late: list[str] = []
    monkeypatch.setattr(
        "sys.stdin", _AnswerYesAfter(lambda: late.append(finished_job(server, ["b"])))
    )

    pruned = server_cli("prune")

    assert pruned.code == 0, pruned.err
    assert "removed:\n  jobs: 1 job that ended (echo 1)" in pruned.out
    assert server.http.get(f"/echo/{shown}").status_code == 404
    assert server.status("echo", late[0])["status"] == "status_succeeded"


def test_prune_refuses_without_a_terminal_and_a_bad_duration(
    server: Server, server_cli: Cli
) -> None:
    refused = server_cli("prune")
    assert refused.code == 1
    assert refused.err.startswith("error: not done: `cortex-tui prune` asks for confirmation")
    bad = server_cli("prune", "--older-than", "soon")
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
            image, _ = client.images.build(
                fileobj=io.BytesIO(dockerfile.encode()), tag=tags[0], rm=True, forcerm=True
            )
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


# --- races with prune and delete, decided in-process on a real store -------------------


@pytest.mark.docker
def test_prune_counts_only_the_layers_its_images_do_not_share(ctx: Context) -> None:
    """Two API images on the ~180 MB base, each with its own 300 kB layer: removing them
    frees about 600 kB, and the dry run says what the prune then reports."""
    import dockerkit

    dockerkit.require_engine()
    base = dockerkit.ensure_base_image()
    api = f"prune-{uuid.uuid4().hex[:12]}"
    tags = [f"cortex-tui-api/{api}:{c * 16}" for c in "ab"]
    client = dockerkit.client()
    try:
        for tag in tags:
            dockerfile = (
                f"FROM {base}\nLABEL cortex-tui.image=api test.tag={tag}\n"
                "RUN python3 -c \"import os; open('/tmp/blob', 'wb').write(os.urandom(300_000))\"\n"
            )
            client.images.build(
                fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True, forcerm=True
            )
            log = ctx.settings.builds_dir / api / f"{tag.rpartition(':')[2]}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text("built\n")

        dry = prune.prune(ctx, None, dry_run=True)["images"]
        real = prune.prune(ctx, None, dry_run=False)

        assert sorted(i["image"] for i in dry["removed"]) == tags
        assert all(300_000 <= i["bytes"] < 400_000 for i in dry["removed"]), dry
        assert real["images"] == dry
        assert 600_000 <= real["reclaimed_bytes"] < 800_000 + real["database"]["reclaimed_bytes"]
        assert client.images.list(name=f"cortex-tui-api/{api}") == []
    finally:
        for tag in tags:
            with contextlib.suppress(Exception):
                client.images.remove(tag, force=True)
        for backend in ctx.loaded_backends():
            backend.close()
        client.close()


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    """A context on a fresh store with ``echo`` deployed as version ``v1`` (no backend)."""
    settings = Settings(home=tmp_path / "home")
    settings.ensure_dirs()
    store = Store(settings.db_path)
    context = Context(settings=settings, store=store, credentials=Credentials(settings.home))
    save_api(context, V1)
    yield context
    store.close()


V1, V2 = "1" * 16, "2" * 16


def save_api(ctx: Context, api_id: str) -> Path:
    """Deploy ``echo`` as ``api_id`` (its snapshot folder made, its row saved); return it."""
    folder = ctx.settings.apis_dir / "echo" / api_id
    folder.mkdir(parents=True, exist_ok=True)
    with ctx.store.session() as session:
        api = api_queries.get(session, "echo") or Api(
            name="echo", api_id=api_id, spec={}, project_dir="", source_dir="",
            backend="process", created_time=0.0, updated_time=0.0,
        )  # fmt: skip
        api.api_id, api.project_dir = api_id, str(folder)
        api_queries.save(session, api)
    return folder


def add_job(ctx: Context, job_id: str, status: JobStatus, end: float | None, **fields: Any) -> None:
    fields = {"api_name": "echo", "status": status.value, "end_time": end, **fields}
    with ctx.store.session() as session:
        job_queries.add(session, conftest.running_job(job_id, **fields), {})


def job_ids(ctx: Context) -> set[str]:
    with ctx.store.read() as conn:
        return set(job_queries.ids_of_api(conn, "echo"))


class _AnnouncingLock:
    """A lock that says when someone first waits for it (to act while they wait)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.waited = threading.Event()

    def __enter__(self) -> None:
        if not self.lock.acquire(blocking=False):
            self.waited.set()
            self.lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self.lock.release()


def test_prune_keeps_the_snapshot_of_a_deploy_that_finished_while_it_looked(
    ctx: Context,
) -> None:
    v1 = ctx.settings.apis_dir / "echo" / V1
    v2 = ctx.settings.apis_dir / "echo" / V2
    v2.mkdir()
    ctx.deploying.add(v2)  # a deploy of v2 is copying it
    lock = _AnnouncingLock()
    ctx.snapshot_lock = lock  # type: ignore[assignment]
    with lock:
        pruning = threading.Thread(target=prune.prune, args=(ctx, None, False))
        pruning.start()
        assert lock.waited.wait(10)
        save_api(ctx, V2)  # ... and finishes: echo now runs v2
        ctx.deploying.discard(v2)
    pruning.join(30)

    assert v2.is_dir()
    assert not v1.exists()


def test_a_retry_and_its_parent_are_removed_together(ctx: Context) -> None:
    add_job(ctx, "parent", JobStatus.COMPLETED_WITH_FAILURES, end=100.0)
    add_job(ctx, "retry", JobStatus.ENQUEUING, end=None, parent_job_id="parent")
    add_job(ctx, "other", JobStatus.SUCCEEDED, end=100.0)

    with ctx.store.read() as conn:
        # the retry still reads its parent's failed batches: the parent stays
        assert prune_queries.removable_jobs(conn, None) == [("other", "echo")]
    with ctx.store.write() as conn:
        conn.exec_driver_sql(
            "UPDATE job SET status = 'status_succeeded', end_time = 200 WHERE job_id = 'retry'"
        )
    with ctx.store.read() as conn:
        # merged results read both: a parent goes only with its retries
        assert prune_queries.removable_jobs(conn, 150.0) == [("other", "echo")]

    report = prune.prune(ctx, None, dry_run=False)

    assert report["jobs"]["count"] == 3
    assert job_ids(ctx) == set()


def test_a_retry_that_ended_long_ago_stays_while_its_sibling_is_kept(ctx: Context) -> None:
    # Merged results of the parent read both retries: neither goes while one must stay.
    add_job(ctx, "parent", JobStatus.COMPLETED_WITH_FAILURES, end=100.0)
    add_job(ctx, "old-retry", JobStatus.COMPLETED_WITH_FAILURES, end=110.0, parent_job_id="parent")
    add_job(ctx, "new-retry", JobStatus.SUCCEEDED, end=300.0, parent_job_id="parent")
    add_job(ctx, "grandchild", JobStatus.SUCCEEDED, end=120.0, parent_job_id="old-retry")
    add_job(ctx, "other", JobStatus.SUCCEEDED, end=100.0)

    with ctx.store.read() as conn:
        assert prune_queries.removable_jobs(conn, 200.0) == [("other", "echo")]
        assert len(prune_queries.removable_jobs(conn, 400.0)) == 5


def test_a_submission_to_an_api_deleted_or_redeployed_meanwhile_is_refused(ctx: Context) -> None:
    from orchestrator.jobs.sources import parse_source

    api = control.get_api(ctx, "echo")
    source = parse_source({"item_list": {"items": [1], "batch_size": 1}})
    options = {"workers": 1, "config": {}, "timeout": None, "retries": 0, "backend": "process",
               "isolate_failures": False, "max_restarts": 1}  # fmt: skip
    save_api(ctx, V2)
    with pytest.raises(NotFound, match='api "echo" was deployed again'):
        control.create_job(ctx, api, options, source)
    with ctx.store.write() as conn:
        api_queries.mark_deleted(conn, "echo", 1.0)
    with pytest.raises(NotFound, match='api "echo" was deleted at'):
        control.create_job(ctx, api, options, source)
    assert job_ids(ctx) == set()


def test_a_workers_call_for_a_job_that_is_gone_tells_it_to_exit(ctx: Context) -> None:
    add_job(ctx, "gone", JobStatus.STOPPED, end=1.0)
    with ctx.store.session() as session:
        worker = worker_queries.add(session, "gone", 0, 0.0)
    with ctx.store.write() as conn:
        prune_queries.delete_jobs(conn, ["gone"])  # as a purge of old did, workers running

    answer = handlers.next_task(ctx, worker, {"want": 1})

    assert answer == {"task": "exit", "reason": "the job no longer exists"}
    assert handlers.next_task(ctx, "no-such-worker", {}) == answer


def test_a_failed_compaction_is_reported_and_the_jobs_stay_removed(ctx: Context) -> None:
    from sqlalchemy import event
    from sqlalchemy.exc import OperationalError

    def full_disk(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement == "VACUUM":  # what SQLite answers when the copy does not fit
            raise OperationalError(
                statement, None, sqlite3.OperationalError("database or disk is full")
            )

    add_job(ctx, "old", JobStatus.SUCCEEDED, end=1.0)
    event.listen(ctx.store.engine, "before_cursor_execute", full_disk)

    report = prune.prune(ctx, None, dry_run=False)

    assert report["jobs"]["count"] == 1 and job_ids(ctx) == set()
    assert report["database"]["compacted"] is False
    assert report["database"]["error"] == "database or disk is full"
    said = footprint.prune_report(report)
    assert said[0].startswith("jobs: 1 job that ended (echo 1)")
    assert said[-2].startswith("database: not compacted: database or disk is full; what is")
    assert said[-1].startswith("reclaimed ") and " about " not in said[-1]  # all exact


def test_image_bytes_are_said_to_be_estimates_in_the_preview_and_the_prune() -> None:
    image = {"image": "cortex-tui-api/echo:1", "bytes": 300_000}
    report = {
        "dry_run": False, "reclaimed_bytes": 300_000, "orphan_log_bytes": 0, "snapshots": [],
        "jobs": {"count": 0, "by_api": {}, "data_bytes": 0, "log_bytes": 0},
        "images": {"removed": [image], "kept": [], "skipped": 0},
        "database": {"bytes_before": 0, "bytes_after": 0, "reclaimed_bytes": 0},
    }  # fmt: skip
    preview = footprint.prune_report({**report, "dry_run": True})
    done = footprint.prune_report(report)

    for said in (preview, done):
        assert "image cortex-tui-api/echo:1 (about 300.0 kB)" in said, said
    assert preview[-1].startswith("would reclaim about ")
    assert done[-1].startswith("reclaimed about ")


def test_a_fresh_log_folder_of_no_known_job_is_left_for_later(ctx: Context) -> None:
    fresh, old = (ctx.settings.logs_dir / (c * 16) for c in "ab")
    for folder in (fresh, old):
        folder.mkdir(parents=True)
        (folder / "orchestrator.log").write_text("job submitted\n")
    os.utime(old, (time.time() - 120, time.time() - 120))

    report = prune.prune(ctx, None, dry_run=False)

    assert report["orphan_log_bytes"] == len("job submitted\n")
    assert fresh.is_dir() and not old.exists()
