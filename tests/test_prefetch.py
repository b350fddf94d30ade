"""Leasing several batches per request: fair shares, heartbeats over a prefetch, stop, bad input.

Real orchestrator, real worker processes (the ``server`` fixture, FAST timings:
visibility timeout 3 s, heartbeat 1 s).
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import FAST, SAMPLES, Server, items_job, make_project


@pytest.fixture
def wide(tmp_path: Path) -> Iterator[Server]:
    """A server whose workers lease up to 30 s of work at a time (testbench deployed)."""
    srv = Server(tmp_path / "home", backend="process", prefetch_window_s="30")
    srv.home.mkdir()
    srv.start()
    srv.deploy(SAMPLES / "testbench")
    yield srv
    left = srv.cleanup()
    assert not left, f"workers left behind: {left}"


def _worker_counts(server: Server, api: str, job_id: str) -> collections.Counter[str]:
    return collections.Counter(r["result"]["worker"] for r in server.results(api, job_id))


def _item_lines(logs: str) -> collections.Counter[int]:
    """Count how often each item was predicted, from the testbench's print_each lines."""
    return collections.Counter(
        int(m) for m in re.findall(r"\bbatch \d+ item 0: (\d+)$", logs, flags=re.MULTILINE)
    )


def test_fast_batches_spread_over_every_worker(wide: Server) -> None:
    # 50 ms batches and a 30 s window: each worker's pace asks for the most a lease may
    # hold (256), more than the whole queue; the fair share caps each lease instead. The
    # queue holds 10 s of work, so a worker that starts seconds after the first on a
    # loaded machine still finds its share waiting.
    items = list(range(200))
    job_id = wide.submit(
        "testbench",
        items_job(items, workers=4, config={"sleep_s": 0.05}),
    )["job_id"]
    status = wide.wait("testbench", job_id)
    assert status["status"] == "status_succeeded", status
    assert [r["result"]["item"] for r in wide.results("testbench", job_id)] == items
    # Every worker got some of the queue (how much depends on when each started; the cap
    # itself is checked exactly in test_store.py).
    counts = _worker_counts(wide, "testbench", job_id)
    assert len(counts) == 4, counts


def test_heartbeats_keep_prefetched_batches_leased(wide: Server) -> None:
    # Each worker leases half the queue (its fair share) and works through it for ~4.2 s,
    # past the 3 s visibility timeout: only heartbeats over the whole prefetch keep the
    # batches not yet started from going back to the queue and being run twice.
    visibility = float(FAST["visibility_timeout_s"])
    items = list(range(14))
    job_id = wide.submit(
        "testbench",
        items_job(items, workers=2, config={"sleep_s": 0.6, "print_each": True}),
    )["job_id"]
    status = wide.wait("testbench", job_id)
    assert status["status"] == "status_succeeded", status
    assert 0.6 * len(items) / 2 > visibility + 1
    seen = _item_lines(wide.logs("testbench", job_id))
    assert seen == dict.fromkeys(items, 1), seen


def test_a_stopping_worker_hands_back_the_batches_it_did_not_start(
    server: Server, testbench: str
) -> None:
    items = list(range(30))
    job_id = server.submit(
        testbench,
        items_job(items, workers=2, config={"sleep_s": 0.2, "print_each": True}),
    )["job_id"]
    # Once both run at their pace, each holds a prefetch of several batches.
    server.wait_for(testbench, job_id, lambda s: s["batch_metrics"]["succeeded"] >= 6)
    victim = next(w for w in server.workers(testbench, job_id) if w["state"] == "running")
    os.kill(int(victim["handle"]["pid"]), signal.SIGTERM)

    status = server.wait(testbench, job_id)
    assert status["status"] == "status_succeeded", status
    assert [r["result"]["item"] for r in server.results(testbench, job_id)] == items
    assert _item_lines(server.logs(testbench, job_id)) == dict.fromkeys(items, 1)
    logs = server.logs(testbench, job_id)
    assert f"[{victim['worker']}] stopping on request (SIGTERM)" in logs
    # What it handed back went to the other worker (or a replacement) well before its
    # leases could have expired: the job did not stall for a visibility timeout.
    ended = {w["worker"]: w for w in server.workers(testbench, job_id)}[victim["worker"]]
    assert ended["exit_code"] == 0, ended
    told = [line for line in logs.splitlines() if f"worker {victim['worker']} " in line]
    assert told and not any("went back to the queue" in line for line in told), told


def test_progress_is_reported_while_a_prefetch_is_worked_through(wide: Server) -> None:
    # One worker, 0.25 s batches, a 30 s window: it leases everything at once, yet its
    # acks go out at least every second, so the job's numbers keep moving.
    job_id = wide.submit(
        "testbench",
        items_job(list(range(24)), workers=1, config={"sleep_s": 0.25}),
    )["job_id"]
    seen: list[tuple[float, int]] = []
    deadline = time.monotonic() + 60
    while (status := wide.status("testbench", job_id))["status"] in (
        "status_enqueuing",
        "status_running",
    ):
        seen.append((time.monotonic(), status["batch_metrics"]["succeeded"]))
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert status["status"] == "status_succeeded", status
    changes = [t for (t, n), (_, m) in itertools.pairwise(seen) if m != n]
    assert len(changes) >= 4, seen
    # Acks go out every second; the margin absorbs a loaded machine's scheduling.
    assert max(b - a for a, b in itertools.pairwise(changes)) < 4, changes


def test_next_refuses_malformed_requests_and_names_the_field(
    server: Server, testbench: str
) -> None:
    job_id = server.submit(
        testbench,
        items_job(list(range(50)), workers=1, config={"sleep_s": 0.2}),
    )["job_id"]
    server.wait_for(testbench, job_id, lambda s: s["worker_stats"]["running"] == 1)
    [worker] = server.workers(testbench, job_id)
    url = f"/_cortex/workers/{worker['worker_id']}/next"
    # The worker's own secret: worker routes take nothing else.
    as_worker = {"Authorization": f"Bearer {server.worker_secret(worker['worker_id'])}"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"acks": {"batch_id": 1}}, "acks: must be a list"),
        ({"acks": [{"batch_id": "7"}]}, "acks[0].batch_id: must be an integer"),
        ({"acks": [{"batch_id": 10**30}]}, "acks[0].batch_id: must be an integer"),
        ({"want": -1}, "want: must be an integer from 0 to"),
        ({"want": 10**6}, "want: must be an integer from 0 to"),
        ({"release": ["a"]}, "release[0]: must be an object with batch_id and lease"),
    ]
    for body, message in cases:
        r = server.http.post(url, json=body, headers=as_worker)
        assert r.status_code == 400, (body, r.text)
        assert message in r.json()["error"], (body, r.json())
    # A real lease with a bad duration: named, and nothing recorded.
    lease = server.http.post(url, json={"want": 1}, headers=as_worker).json()["batches"][0]
    ack = {"batch_id": lease["batch_id"], "lease": lease["lease"], "duration": float("nan")}
    r = server.http.post(
        url,
        content=json.dumps({"acks": [ack]}).replace("NaN", '"fast"'),
        headers={**as_worker, "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and "acks[0].duration" in r.json()["error"], r.text
    r = server.http.post(
        f"/_cortex/workers/{worker['worker_id']}/heartbeat",
        json={"batch_ids": 3},
        headers=as_worker,
    )
    assert r.status_code == 400 and "batch_ids: must be a list" in r.json()["error"], r.text
    # None of that disturbed the job.
    server.http.delete(f"/{testbench}/{job_id}")
    assert server.wait(testbench, job_id)["status"] == "status_stopped"


def test_a_stopped_job_of_short_batches_counts_every_batch_it_ran(
    server: Server, testbench: str
) -> None:
    # 30 ms batches: the workers lease ahead while their last batch runs, so the stop
    # lands with leases and acks in flight. Every batch that ran is counted, none is
    # left leased, and the rest are still queued.
    job_id = server.submit(
        testbench,
        items_job(list(range(3000)), workers=2, config={"sleep_s": 0.03}),
    )["job_id"]
    server.wait_for(testbench, job_id, lambda s: s["batch_metrics"]["succeeded"] >= 100)
    assert server.http.delete(f"/{testbench}/{job_id}").status_code == 200
    status = server.wait_workers_gone(testbench, job_id)
    assert status["status"] == "status_stopped"
    metrics = status["batch_metrics"]
    assert status["batches_in_flight"] == 0, status
    assert status["batches_in_queue"] + metrics["succeeded"] == metrics["total"] == 3000
    ran = re.findall(r"\bbatch \d+: 1 items$", server.logs(testbench, job_id), flags=re.MULTILINE)
    assert len(ran) == metrics["succeeded"] == len(server.results(testbench, job_id))


BIG_RESULTS = """\
class PythonPredictor:
    def __init__(self, config):
        self.mib = config["mib"]

    def predict(self, payload):
        return ["x" * (self.mib.get(str(item), 0) << 20) for item in payload]
"""


def test_results_too_big_to_send_fail_their_batch_and_large_ones_are_sent_in_parts(
    server: Server, tmp_path: Path
) -> None:
    # Item 7's result (40 MiB of JSON) is over the 32 MiB limit per batch: that batch fails
    # with the reason, and the job goes on. The others return 6 MiB each, instantly: one
    # worker leases them all at once, and its acks go out in parts under the orchestrator's
    # 64 MiB request limit instead of in one refused request.
    mib = {str(item): 6 for item in range(12)} | {"7": 40}
    server.deploy(make_project(tmp_path, "big-results", BIG_RESULTS))
    job_id = server.submit(
        "big-results",
        items_job(list(range(12)), workers=1, config={"mib": mib}, retries=0),
    )["job_id"]
    status = server.wait("big-results", job_id, timeout=120)
    assert status["status"] == "status_completed_with_failures", status
    assert status["batch_metrics"] == {**status["batch_metrics"], "succeeded": 11, "failed": 1}
    [failed] = server.failed("big-results", job_id)
    assert failed["batch_index"] == 7
    assert "40.0 MiB of JSON for this batch, over the 32 MiB limit" in failed["error"]
    server.wait_for("big-results", job_id, lambda s: s["worker_stats"]["succeeded"] == 1)
    [worker] = server.workers("big-results", job_id)
    assert (worker["state"], worker["exit_code"]) == ("succeeded", 0), worker
    results = server.results("big-results", job_id)
    assert [r["item_index"] for r in results] == [i for i in range(12) if i != 7]
    assert [len(r["result"]) for r in results] == [6 << 20] * 11
