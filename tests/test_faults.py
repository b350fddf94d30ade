"""Fault tests: workers and the orchestrator die, jobs still end with a true status.

Everything here runs the real orchestrator and real worker processes (the ``server``
fixture) with the quick delivery timings of ``conftest.FAST``: visibility timeout 3 s,
heartbeat 1 s, supervisor tick 0.2 s, stop grace 3 s.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import FAST, SAMPLES, Server, make_project

ACTIVE = ("status_enqueuing", "status_running")

EXITS_IN_PREDICT = """\
import os


class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload):
        print("about to die", flush=True)
        os._exit(1)
"""

IGNORES_SIGTERM = """\
import signal
import time


class PythonPredictor:
    def __init__(self, config):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def predict(self, payload):
        time.sleep(120)
        return payload
"""


# --- helpers ----------------------------------------------------------------
def _running(pid: int) -> bool:
    """Return whether ``pid`` is a running process (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def _wait_gone(pids: list[int], timeout: float) -> float:
    """Wait until none of ``pids`` runs; return how long that took."""
    started = time.monotonic()
    while any(_running(pid) for pid in pids):
        if time.monotonic() - started > timeout:
            alive = [pid for pid in pids if _running(pid)]
            raise AssertionError(f"processes {alive} still run after {timeout}s")
        time.sleep(0.05)
    return time.monotonic() - started


def _pid(worker: dict[str, Any]) -> int:
    """Return the process id of a worker of ``GET .../workers``."""
    return int(worker["handle"]["pid"])


def _stored_job(server: Server, job_id: str) -> dict[str, Any]:
    """Read a job's row straight from the store (for when the orchestrator is down)."""
    with sqlite3.connect(server.home / "cortex.db") as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute("SELECT * FROM job WHERE job_id = ?", (job_id,)).fetchone()
    assert row is not None
    return dict(row)


def _assert_each_item_once(server: Server, api: str, job_id: str, items: list[Any]) -> None:
    """Assert the job's results hold every item exactly once, in item order."""
    results = server.results(api, job_id)
    assert [r["item_index"] for r in results] == list(range(len(items)))
    assert [r["result"]["item"] for r in results] == items


# --- 1. a worker dies mid-batch ---------------------------------------------
@pytest.mark.slow
def test_worker_killed_mid_batch_is_replaced_and_its_batch_redelivered(
    server: Server, testbench: str
) -> None:
    items = list(range(20))
    job = server.submit(
        testbench,
        {
            "workers": 2,
            "item_list": {"items": items, "batch_size": 1},
            "config": {"sleep_s": 0.5},
        },
    )
    job_id = job["job_id"]
    # Both workers are in predict (each holds a batch) and most batches are still queued.
    server.wait_for(
        testbench,
        job_id,
        lambda s: (
            s["worker_stats"]["running"] == 2
            and s["batches_in_flight"] == 2
            and s["batch_metrics"]["succeeded"] >= 1
        ),
    )
    victim = next(w for w in server.workers(testbench, job_id) if w["state"] == "running")
    os.kill(_pid(victim), signal.SIGKILL)

    status = server.wait(testbench, job_id)
    assert status["status"] == "status_succeeded", status
    assert status["batch_metrics"]["succeeded"] == status["batch_metrics"]["total"] == 20
    assert status["batch_metrics"]["failed"] == 0
    _assert_each_item_once(server, testbench, job_id, items)

    status = server.wait_workers_gone(testbench, job_id)
    assert status["worker_stats"]["failed"] == 1
    assert status["worker_stats"]["succeeded"] == 2
    workers = {w["worker"]: w for w in server.workers(testbench, job_id)}
    assert len(workers) == 3, "one replacement worker should have been started"
    assert workers[victim["worker"]]["state"] == "failed"
    assert workers[victim["worker"]]["exit_code"] == -signal.SIGKILL
    lines = server.logs(testbench, job_id).splitlines()
    told = [line for line in lines if f"worker {victim['worker']} failed" in line]
    assert told, "the logs should say the killed worker failed"
    assert "killed by signal 9" in told[0]
    assert "went back to the queue" in told[0]


# --- 2. the orchestrator dies mid-job and comes back -------------------------
@pytest.mark.slow
@pytest.mark.parametrize(
    "worker_dies_meanwhile", [False, True], ids=["workers-live", "worker-dies"]
)
def test_orchestrator_killed_mid_job_recovers_its_workers(
    server: Server, testbench: str, tmp_path: Path, worker_dies_meanwhile: bool
) -> None:
    items = list(range(30))
    marker = tmp_path / "complete.txt"
    job = server.submit(
        testbench,
        {
            "workers": 2,
            "item_list": {"items": items, "batch_size": 1},
            "config": {"sleep_s": 0.3, "complete_marker": str(marker)},
        },
    )
    job_id = job["job_id"]
    server.wait_for(
        testbench,
        job_id,
        lambda s: s["batch_metrics"]["succeeded"] >= 4 and s["worker_stats"]["running"] == 2,
    )
    before = server.workers(testbench, job_id)
    assert len(before) == 2

    server.kill()
    victim = before[0]
    if worker_dies_meanwhile:
        os.kill(_pid(victim), signal.SIGKILL)
    time.sleep(2)
    survivors = before[1:] if worker_dies_meanwhile else before
    assert all(_running(_pid(w)) for w in survivors), "workers must outlive the orchestrator"
    assert _running(_pid(victim)) is not worker_dies_meanwhile
    server.start()

    status = server.wait(testbench, job_id)
    assert status["status"] == "status_succeeded", status
    assert status["batch_metrics"]["succeeded"] == status["batch_metrics"]["total"] == 30
    assert status["batch_metrics"]["failed"] == 0
    _assert_each_item_once(server, testbench, job_id, items)
    assert marker.read_text().splitlines() == [f"{job_id} 30 0 30"]

    status = server.wait_workers_gone(testbench, job_id)
    workers = {w["worker"]: w for w in server.workers(testbench, job_id)}
    if worker_dies_meanwhile:
        assert workers[victim["worker"]]["state"] == "failed"
        assert len(workers) == 3, "the dead worker should have been replaced"
        assert status["worker_stats"]["failed"] == 1
    else:
        # The restarted orchestrator found both workers again instead of replacing them.
        assert len(workers) == 2
        assert status["worker_stats"]["succeeded"] == 2
        assert status["worker_stats"]["failed"] == 0


# --- 3. the orchestrator dies while enqueuing --------------------------------
@pytest.mark.slow
def test_orchestrator_killed_while_enqueuing_resumes_without_duplicates(
    server: Server, testbench: str, tmp_path: Path
) -> None:
    # 450,000 one-line items (6.2 MB) in batches of 25: 18,000 batches committed 2,000 at a
    # time, nine chunks, so the kill lands between two of them on a fast or a loaded machine.
    lines, batch_size = 450_000, 25
    source = tmp_path / "items.jsonl"
    with open(source, "w") as f:
        f.writelines(f'{{"n": {i}}}\n' for i in range(lines))
    job = server.submit(
        testbench,
        {
            "workers": 4,
            "delimited_files": {"s3_paths": [str(source)], "batch_size": batch_size},
            "config": {"sleep_s": 0},
        },
    )
    job_id = job["job_id"]
    server.wait_for(
        testbench,
        job_id,
        lambda s: s["status"] != "status_enqueuing" or s["items_enqueued"] > 0,
    )
    server.kill()
    stored = _stored_job(server, job_id)
    assert stored["status"] == "status_enqueuing", "enqueuing ended before the kill"
    assert 0 < stored["enqueued_items"] < lines
    assert stored["total"] * batch_size == stored["enqueued_items"]

    server.start()
    status = server.wait(testbench, job_id, timeout=90)
    assert status["status"] == "status_succeeded", status
    assert status["items_enqueued"] == lines
    total = lines // batch_size
    assert status["batch_metrics"]["succeeded"] == status["batch_metrics"]["total"] == total
    assert "resuming enqueuing" in server.logs(testbench, job_id)

    results = server.results(testbench, job_id)
    assert [r["item_index"] for r in results] == list(range(lines))
    assert all(r["result"]["item"]["n"] == r["item_index"] for r in results)
    assert all(r["batch_index"] == r["item_index"] // batch_size for r in results)


# --- 4. workers that keep dying ---------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(
    ("workers", "max_restarts", "bound"),
    [(2, None, 2 * 2), (1, 1, 1)],
    ids=["default-bound", "explicit-bound"],
)
def test_workers_that_keep_dying_end_the_job_once_restarts_are_spent(
    server: Server, tmp_path: Path, workers: int, max_restarts: int | None, bound: int
) -> None:
    server.deploy(make_project(tmp_path, "dies", EXITS_IN_PREDICT))
    body: dict[str, Any] = {
        "workers": workers,
        "item_list": {"items": list(range(5)), "batch_size": 1},
    }
    if max_restarts is not None:
        body["max_worker_restarts"] = max_restarts
    job_id = server.submit("dies", body)["job_id"]

    status = server.wait("dies", job_id)
    assert status["status"] == "status_worker_error", status
    assert status["max_worker_restarts"] == bound
    message = status["message"]
    assert "exited with code 1" in message
    assert f"limit of {bound} worker restart(s) is spent" in message
    # A worker's death is not a batch failure: every batch went back to the queue.
    assert status["batch_metrics"]["failed"] == status["batch_metrics"]["succeeded"] == 0
    assert status["batches_in_queue"] == 5

    launched = server.workers("dies", job_id)
    assert len(launched) == workers + bound
    assert all(w["state"] == "failed" and w["exit_code"] == 1 for w in launched)
    assert status["worker_stats"]["failed"] == workers + bound


# --- 5. stop: SIGTERM, then SIGKILL ------------------------------------------
@pytest.mark.slow
def test_stop_kills_a_worker_that_ignores_sigterm(server: Server, tmp_path: Path) -> None:
    server.deploy(make_project(tmp_path, "stubborn", IGNORES_SIGTERM))
    job_id = server.submit(
        "stubborn", {"workers": 1, "item_list": {"items": [1, 2], "batch_size": 1}}
    )["job_id"]
    server.wait_for("stubborn", job_id, lambda s: s["batches_in_flight"] == 1)
    [worker] = server.workers("stubborn", job_id)

    r = server.http.delete(f"/stubborn/{job_id}")
    assert r.status_code == 200, r.text
    assert r.json() == {"message": f"stopped job {job_id}"}
    grace = float(FAST["stop_grace_s"])
    took = _wait_gone([_pid(worker)], timeout=grace + 3)
    assert took >= grace - 0.5, f"the worker ignores SIGTERM, yet it was gone after {took:.1f}s"

    status = server.wait_workers_gone("stubborn", job_id)
    assert status["status"] == "status_stopped"
    assert status["batch_metrics"]["succeeded"] == 0
    [worker] = server.workers("stubborn", job_id)
    assert worker["state"] == "failed"
    assert worker["exit_code"] == -signal.SIGKILL


@pytest.mark.slow
def test_stop_lets_a_worker_finish_its_batch_and_keeps_the_result(
    server: Server, testbench: str
) -> None:
    job_id = server.submit(
        testbench,
        {
            "workers": 1,
            "item_list": {"items": list(range(5)), "batch_size": 1},
            "config": {"sleep_s": 1.5},
        },
    )["job_id"]
    before = server.wait_for(
        testbench,
        job_id,
        lambda s: s["batches_in_flight"] == 1 and s["worker_stats"]["running"] == 1,
    )
    assert before["batch_metrics"]["succeeded"] == 0
    [worker] = server.workers(testbench, job_id)

    r = server.http.delete(f"/{testbench}/{job_id}")
    assert r.status_code == 200, r.text
    _wait_gone([_pid(worker)], timeout=float(FAST["stop_grace_s"]) + 3)

    status = server.wait_workers_gone(testbench, job_id)
    assert status["status"] == "status_stopped"
    # The batch in flight at the stop finished and counts; no other batch was started.
    assert status["batch_metrics"]["succeeded"] == 1
    assert [r["result"]["item"] for r in server.results(testbench, job_id)] == [0]
    [worker] = server.workers(testbench, job_id)
    assert worker["state"] == "succeeded", "the worker should exit cleanly on SIGTERM"
    assert worker["exit_code"] == 0
    assert "finishing the current batch" in server.logs(testbench, job_id)


# --- 6. heartbeats keep a long batch leased ---------------------------------
@pytest.mark.slow
def test_heartbeats_keep_a_batch_longer_than_the_visibility_timeout(
    server: Server, testbench: str
) -> None:
    visibility = float(FAST["visibility_timeout_s"])
    sleep_s = visibility + 2
    items = [100, 101, 102]
    # Two workers, three batches: an expired lease would go to the worker that is free first.
    job_id = server.submit(
        testbench,
        {
            "workers": 2,
            "item_list": {"items": items, "batch_size": 1},
            "config": {"sleep_s": sleep_s, "print_each": True},
        },
    )["job_id"]
    queued: list[int] = []  # batches_in_queue, sampled while the job runs
    deadline = time.monotonic() + 60
    while (status := server.status(testbench, job_id))["status"] in ACTIVE:
        if status["status"] == "status_running":
            queued.append(status["batches_in_queue"])
        assert time.monotonic() < deadline, status
        time.sleep(0.1)
    assert status["status"] == "status_succeeded", status
    assert len(queued) > 2 * sleep_s, "the job ran too briefly to sample its queue"
    assert status["batch_metrics"]["succeeded"] == 3
    # A lease that expired would have put its batch back: the queue never grows.
    assert queued == sorted(queued, reverse=True), queued

    logs = server.logs(testbench, job_id)
    for item in items:
        seen = re.findall(rf"\bitem 0: {item}$", logs, flags=re.MULTILINE)
        assert len(seen) == 1, f"item {item} was processed {len(seen)} times"
    assert len(re.findall(r"\bbatch \d+: 1 items$", logs, flags=re.MULTILINE)) == 3
    _assert_each_item_once(server, testbench, job_id, items)


# --- 7. two jobs at once ----------------------------------------------------
@pytest.mark.slow
def test_two_jobs_on_one_api_at_once_keep_exact_counts(server: Server, testbench: str) -> None:
    jobs = {}
    for first in (0, 1000):
        items = list(range(first, first + 40))
        job = server.submit(
            testbench,
            {
                "workers": 4,
                "item_list": {"items": items, "batch_size": 1},
                "config": {"sleep_s": 0.1},
            },
        )
        jobs[job["job_id"]] = items
    ended = []
    for job_id, items in jobs.items():
        status = server.wait(testbench, job_id)
        ended.append(status)
        assert status["status"] == "status_succeeded", status
        assert status["batch_metrics"]["succeeded"] == status["batch_metrics"]["total"] == 40
        assert status["batch_metrics"]["failed"] == 0
        _assert_each_item_once(server, testbench, job_id, items)
    # The two jobs really ran at the same time (the timestamps share one format).
    assert max(s["start_time"] for s in ended) < min(s["end_time"] for s in ended)
    for job_id in jobs:
        status = server.wait_workers_gone(testbench, job_id)
        assert status["worker_stats"]["failed"] == 0
        assert len(server.workers(testbench, job_id)) == 4


# --- 6. a redeploy while a job runs ------------------------------------------------------

VERSIONED = """\
import time

VERSION = "{version}"


class PythonPredictor:
    def predict(self, payload):
        time.sleep(0.3)
        return [VERSION for _ in payload]
"""


def test_a_running_job_keeps_its_api_version_across_a_redeploy(
    server: Server, tmp_path: Path
) -> None:
    project = make_project(tmp_path, "versioned", VERSIONED.format(version="v1"))
    first = server.deploy(project)["apis"][0]
    job_id = server.submit("versioned", {"item_list": {"items": list(range(30)), "batch_size": 1}})[
        "job_id"
    ]
    server.wait_for("versioned", job_id, lambda s: s["batch_metrics"]["succeeded"] >= 1)
    (project / "predictor.py").write_text(VERSIONED.format(version="v2"))
    second = server.deploy(project)["apis"][0]
    assert (second["result"], second["api_id"] != first["api_id"]) == ("updated", True)
    # The job's worker dies after the redeploy: its replacement runs the job's version too.
    [worker] = [w for w in server.workers("versioned", job_id) if w["state"] == "running"]
    os.killpg(int(worker["handle"]["pid"]), signal.SIGKILL)

    status = server.wait("versioned", job_id, timeout=60)
    assert status["status"] == "status_succeeded", status
    assert status["api_id"] == first["api_id"]
    assert len(server.workers("versioned", job_id)) == 2  # the replacement ran
    assert {r["result"] for r in server.results("versioned", job_id)} == {"v1"}
    new_job = server.submit("versioned", {"item_list": {"items": [1], "batch_size": 1}})["job_id"]
    server.wait("versioned", new_job)
    assert [r["result"] for r in server.results("versioned", new_job)] == ["v2"]


def test_a_worker_whose_orchestrator_stays_gone_exits_after_orchestrator_wait_s(
    tmp_path: Path,
) -> None:
    srv = Server(tmp_path / "home", orchestrator_wait_s="2")
    srv.home.mkdir()
    srv.start()
    try:
        srv.deploy(SAMPLES / "testbench")
        job = srv.submit(
            "testbench",
            {"item_list": {"items": list(range(100)), "batch_size": 1}, "config": {"sleep_s": 0.3}},
        )
        srv.wait_for("testbench", job["job_id"], lambda s: s["worker_stats"]["running"] == 1)
        [worker] = srv.workers("testbench", job["job_id"])

        srv.kill()  # and never started again
        deadline = time.monotonic() + 20  # 2 s of waiting, a batch, and the calls in flight
        while _running(_pid(worker)) and time.monotonic() < deadline:
            time.sleep(0.2)

        assert not _running(_pid(worker)), "the worker should have given up and exited"
        log = (srv.home / "logs" / job["job_id"] / f"{worker['worker']}.log").read_text()
        assert "worker failed: the orchestrator did not answer" in log
    finally:
        assert srv.cleanup() == []
