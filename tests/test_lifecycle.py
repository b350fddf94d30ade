"""The job lifecycle contract, over HTTP only: every status a backend can produce.

Each test runs against a fresh orchestrator on every backend of the ``backend`` fixture,
and talks to it only through its HTTP endpoints (plus files the predictor writes, which
the testbench predictor's README describes). Malformed submissions and deployments are in
test_bad_input.py; a predictor raising in ``__init__``, in ``predict`` and in
``on_job_complete`` is covered here (test_worker_error_after_init_keeps_failing,
test_completed_with_failures_keeps_a_failed_batch_ledger, test_on_job_complete_failure_*).
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import SAMPLES, Server, items_job, make_project

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

ECHO_CONFIG = """
class PythonPredictor:
    def __init__(self, config):
        self.config = config

    def predict(self, payload):
        return {"config": self.config, "items": payload}
"""


def write_jsonl(path: Path, lines: list[str]) -> Path:
    """Write raw lines (each one an item's JSON, or deliberately not) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))
    return path


def result_items(server: Server, api: str, job_id: str) -> list[Any]:
    """Return the items a testbench job's results echo, in item order."""
    return [r["result"]["item"] for r in server.results(api, job_id)]


# --- status_succeeded ---------------------------------------------------------------------


def test_succeeded_with_exact_counts_times_and_worker_stats(server: Server, testbench: str) -> None:
    job = server.submit(
        testbench, items_job(list(range(10)), batch_size=3, workers=2, config={"sleep_s": 0.05})
    )

    status = server.wait(testbench, job["job_id"])

    assert status["status"] == "status_succeeded", status
    assert status["message"] is None
    assert status["batch_metrics"]["succeeded"] == 4
    assert status["batch_metrics"]["failed"] == 0
    assert status["batch_metrics"]["total"] == 4
    assert status["batches_in_queue"] == 0
    assert status["batch_metrics"]["avg_time_per_batch"] >= 0.05
    assert RFC3339.match(status["end_time"])
    assert status["created_time"] <= status["start_time"] <= status["end_time"]
    stats = server.wait_for(
        testbench, job["job_id"], lambda s: s["worker_stats"]["succeeded"] == 2, timeout=10
    )["worker_stats"]
    assert stats == {
        "pending": 0,
        "initializing": 0,
        "running": 0,
        "succeeded": 2,
        "failed": 0,
        "stalled": 0,
    }
    results = server.results(testbench, job["job_id"])
    assert [r["item_index"] for r in results] == list(range(10))
    assert [r["result"]["item"] for r in results] == list(range(10))
    assert server.failed(testbench, job["job_id"]) == []


# --- status_completed_with_failures, the failed-batch ledger, retries ---------------------


def test_completed_with_failures_keeps_a_failed_batch_ledger(
    server: Server, testbench: str
) -> None:
    job = server.submit(
        testbench, items_job(list(range(10)), batch_size=2, workers=2, config={"fail_items": [5]})
    )

    status = server.wait(testbench, job["job_id"])

    assert status["status"] == "status_completed_with_failures", status
    assert "1 of 5 batches failed" in status["message"]
    assert status["batch_metrics"] == {
        "succeeded": 4,
        "failed": 1,
        "total": 5,
        "avg_time_per_batch": status["batch_metrics"]["avg_time_per_batch"],
    }
    assert "end_time" in status
    [failed] = server.failed(testbench, job["job_id"])
    assert failed["batch_index"] == 2
    assert failed["payload"] == [4, 5]
    assert failed["error"] == "ValueError: item 5 is in fail_items"
    assert "ValueError" in failed["traceback"]
    assert "Traceback (most recent call last)" in failed["traceback"]
    assert failed["attempts"] == 1
    assert re.fullmatch(r"w\d+", failed["worker"])
    results = server.results(testbench, job["job_id"])
    assert [r["item_index"] for r in results] == [0, 1, 2, 3, 6, 7, 8, 9]
    assert [r["result"]["item"] for r in results] == [0, 1, 2, 3, 6, 7, 8, 9]


def test_a_poison_item_is_isolated_and_a_retry_of_it_completes_the_job(
    server: Server, testbench: str
) -> None:
    # One batch of 8 with item 5 poisoned: isolation saves the other 7, and a retry (with
    # the poison lifted) re-runs item 5 alone; merged, the parent has every item.
    body = items_job(list(range(8)), batch_size=8, workers=1, config={"fail_items": [5]})
    parent = server.submit(testbench, {**body, "isolate_failures": True})["job_id"]

    status = server.wait(testbench, parent)

    assert status["status"] == "status_completed_with_failures", status
    assert status["batch_metrics"]["failed"] == 1 and status["batch_metrics"]["total"] == 1
    assert status["item_metrics"] == {"succeeded": 7, "failed": 1}
    [poison] = server.failed(testbench, parent)
    assert (poison["payload"], poison["isolation"]) == ([5], "isolated")
    assert [r["item_index"] for r in server.results(testbench, parent)] == [0, 1, 2, 3, 4, 6, 7]

    path = f"/_cortex/apis/{testbench}/jobs/{parent}/retry"
    child = server.http.post(path, json={"config": {"fail_items": []}}).json()["job_id"]
    assert server.wait(testbench, child)["status"] == "status_succeeded"
    merged = server.http.get(
        f"/_cortex/apis/{testbench}/jobs/{parent}/results", params={"merge_retries": "true"}
    ).text.splitlines()
    assert [json.loads(line)["item_index"] for line in merged] == list(range(8))


def test_retries_let_a_batch_that_fails_once_succeed(
    server: Server, testbench: str, tmp_path: Path
) -> None:
    config = {"fail_items": [3], "fail_times": 1, "state_dir": str(tmp_path / "attempts")}
    job = server.submit(
        testbench, items_job(list(range(6)), batch_size=2, workers=2, retries=2, config=config)
    )

    status = server.wait(testbench, job["job_id"])

    assert status["status"] == "status_succeeded", status
    assert status["batch_metrics"]["succeeded"] == 3
    assert status["batch_metrics"]["failed"] == 0
    assert server.failed(testbench, job["job_id"]) == []
    assert result_items(server, testbench, job["job_id"]) == list(range(6))
    assert "attempt 1 fails on item 3" in server.logs(testbench, job["job_id"])


def test_a_batch_failing_every_attempt_is_tried_retries_plus_one_times(
    server: Server, testbench: str
) -> None:
    config = {"fail_items": [0], "fail_times": -1}
    job = server.submit(testbench, items_job([0, 1], batch_size=1, retries=1, config=config))

    status = server.wait(testbench, job["job_id"])

    assert status["status"] == "status_completed_with_failures", status
    [failed] = server.failed(testbench, job["job_id"])
    assert failed["payload"] == [0]
    assert failed["attempts"] == 2
    assert result_items(server, testbench, job["job_id"]) == [1]


@pytest.mark.slow
def test_a_batch_longer_than_the_visibility_timeout_is_delivered_once(
    server: Server, testbench: str
) -> None:
    # The fixture's server lets a lease lapse after 3 s unless heartbeats extend it; a lapsed
    # batch would go to whichever worker asks next, so its predict would run twice.
    job = server.submit(
        testbench, items_job([1, 2, 3], batch_size=1, workers=2, config={"sleep_s": 4})
    )

    status = server.wait(testbench, job["job_id"], timeout=40)

    assert status["status"] == "status_succeeded", status
    assert status["batch_metrics"]["succeeded"] == 3
    assert result_items(server, testbench, job["job_id"]) == [1, 2, 3]
    assert server.logs(testbench, job["job_id"]).count(": 1 items") == 3


# --- on_job_complete ----------------------------------------------------------------------


def test_on_job_complete_runs_exactly_once_with_many_workers(
    server: Server, testbench: str, tmp_path: Path
) -> None:
    marker = tmp_path / "complete.txt"
    job = server.submit(
        testbench,
        items_job(
            list(range(12)),
            batch_size=1,
            workers=4,
            config={"sleep_s": 0.05, "complete_marker": str(marker)},
        ),
    )

    status = server.wait(testbench, job["job_id"])
    server.wait_workers_gone(testbench, job["job_id"])

    assert status["status"] == "status_succeeded", status
    assert marker.read_text().splitlines() == [f"{job['job_id']} 12 0 12"]


def test_on_job_complete_failure_completes_the_job_with_failures(
    server: Server, testbench: str, tmp_path: Path
) -> None:
    marker = tmp_path / "complete.txt"
    config = {"complete_marker": str(marker), "complete_fail": "hook-broke-7"}
    job = server.submit(
        testbench, items_job(list(range(4)), batch_size=2, workers=2, config=config)
    )

    status = server.wait(testbench, job["job_id"])
    server.wait_workers_gone(testbench, job["job_id"])

    assert status["status"] == "status_completed_with_failures", status
    assert "on_job_complete" in status["message"]
    assert "RuntimeError: hook-broke-7" in status["message"]
    assert status["batch_metrics"]["succeeded"] == 2
    assert status["batch_metrics"]["failed"] == 0
    assert marker.read_text().splitlines() == [f"{job['job_id']} 2 0 2"]
    assert "hook-broke-7" in server.logs(testbench, job["job_id"])
    assert result_items(server, testbench, job["job_id"]) == [0, 1, 2, 3]


# --- sources: status_enqueue_failed and end-to-end file sources ---------------------------


def test_enqueue_failed_on_an_invalid_json_line_names_file_and_line(
    server: Server, testbench: str, tmp_path: Path
) -> None:
    data = write_jsonl(tmp_path / "data" / "items.jsonl", ["1", "2", "{not json", "4"])
    job = server.submit(testbench, {"delimited_files": {"s3_paths": [str(data)], "batch_size": 1}})

    status = server.wait(testbench, job["job_id"], timeout=20)

    assert status["status"] == "status_enqueue_failed", status
    assert str(data) in status["message"]
    assert "line 3" in status["message"]
    assert "invalid JSON" in status["message"]
    assert "end_time" in status
    assert sum(status["worker_stats"].values()) == 0
    assert f"{data} line 3" in server.logs(testbench, job["job_id"])


def test_enqueue_failed_when_the_files_hold_no_items(
    server: Server, testbench: str, tmp_path: Path
) -> None:
    data = write_jsonl(tmp_path / "data" / "blank.jsonl", ["", "   ", ""])
    job = server.submit(testbench, {"delimited_files": {"s3_paths": [str(data)], "batch_size": 1}})

    status = server.wait(testbench, job["job_id"], timeout=20)

    assert status["status"] == "status_enqueue_failed", status
    assert "no batches" in status["message"]
    assert status["batch_metrics"]["total"] == 0


def test_file_path_lister_matching_nothing_is_refused_at_submit(
    server: Server, testbench: str, tmp_path: Path
) -> None:
    write_jsonl(tmp_path / "data" / "a.jsonl", ["1"])
    body = {
        "file_path_lister": {
            "s3_paths": [str(tmp_path / "data")],
            "includes": ["**/*.png"],
            "batch_size": 1,
        }
    }

    response = server.http.post(f"/{testbench}", json=body)

    assert response.status_code == 400, response.text
    assert "file_path_lister: no files matched" in response.json()["error"]
    assert '"**/*.png"' in response.json()["error"]
    assert server.http.get(f"/{testbench}").json()["jobs"] == []


def test_delimited_files_batches_cross_file_boundaries_in_order(
    server: Server, testbench: str, tmp_path: Path
) -> None:
    write_jsonl(tmp_path / "data" / "a.jsonl", [json.dumps(i) for i in range(5)])
    write_jsonl(tmp_path / "data" / "b.jsonl", [json.dumps(i) for i in range(5, 10)])
    body = {
        "workers": 2,
        "delimited_files": {"s3_paths": [str(tmp_path / "data")], "batch_size": 3},
    }

    job = server.submit(testbench, body)
    status = server.wait(testbench, job["job_id"])

    assert status["status"] == "status_succeeded", status
    assert status["batch_metrics"]["total"] == 4
    results = server.results(testbench, job["job_id"])
    assert [r["item_index"] for r in results] == list(range(10))
    assert [r["result"]["item"] for r in results] == list(range(10))
    assert [r["batch_index"] for r in results] == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3]


def test_file_path_lister_hands_each_matching_path_to_the_predictor(
    server: Server, testbench: str, tmp_path: Path
) -> None:
    root = tmp_path / "files"
    for name in ["b.txt", "a.txt", "sub/c.txt", "skip.csv"]:
        write_jsonl(root / name, ["0"])
    body = {
        "file_path_lister": {"s3_paths": [str(root)], "includes": ["**/*.txt"], "batch_size": 2}
    }

    job = server.submit(testbench, body)
    status = server.wait(testbench, job["job_id"])

    assert status["status"] == "status_succeeded", status
    assert status["batch_metrics"]["total"] == 2
    expected = [str(root / "a.txt"), str(root / "b.txt"), str(root / "sub" / "c.txt")]
    assert result_items(server, testbench, job["job_id"]) == expected


# --- status_worker_error ------------------------------------------------------------------


@pytest.mark.slow
def test_worker_error_after_init_keeps_failing(server: Server, testbench: str) -> None:
    job = server.submit(
        testbench,
        items_job(
            [1, 2], batch_size=1, max_worker_restarts=1, config={"init_fail": "init-exploded-42"}
        ),
    )

    status = server.wait(testbench, job["job_id"], timeout=30)

    assert status["status"] == "status_worker_error", status
    assert "RuntimeError: init-exploded-42" in status["message"]
    assert "__init__" in status["message"]
    workers = server.workers(testbench, job["job_id"])
    assert len(workers) == 2  # the first worker and its one allowed restart
    assert {w["state"] for w in workers} == {"failed"}
    assert status["batches_in_queue"] == 2
    assert status["batch_metrics"]["succeeded"] == 0
    assert "init-exploded-42" in server.logs(testbench, job["job_id"])


@pytest.mark.parametrize(
    ("predictor", "expected"),
    [
        pytest.param(
            "class Predictor:\n    def predict(self, payload):\n        return payload\n",
            "class PythonPredictor not found (classes found: Predictor)",
            id="missing-class",
        ),
        pytest.param(
            "class PythonPredictor:\n    def predict(self, payload, foo):\n        return 1\n",
            "PythonPredictor.predict has a parameter 'foo' the runtime cannot pass",
            id="bad-predict-signature",
        ),
        pytest.param(
            "import not_a_real_module\n\nclass PythonPredictor:\n"
            "    def predict(self, payload):\n        return payload\n",
            "No module named 'not_a_real_module'",
            id="import-error",
        ),
    ],
)
def test_worker_error_on_a_predictor_that_cannot_load_is_fatal_at_once(
    server: Server, tmp_path: Path, predictor: str, expected: str
) -> None:
    server.deploy(make_project(tmp_path, "broken", predictor))
    job = server.submit("broken", items_job([1, 2, 3], batch_size=1))

    status = server.wait("broken", job["job_id"], timeout=20)

    assert status["status"] == "status_worker_error", status
    assert expected in status["message"]
    assert "predictor.py" in status["message"]
    # Load errors are not retried: no worker was started after the first.
    assert len(server.workers("broken", job["job_id"])) == 1
    assert expected in server.logs("broken", job["job_id"])


@pytest.mark.slow
def test_worker_error_when_workers_keep_crashing_mid_batch(server: Server, tmp_path: Path) -> None:
    crash = (
        "import os\n\nclass PythonPredictor:\n"
        "    def predict(self, payload):\n        os._exit(3)\n"
    )
    server.deploy(make_project(tmp_path, "crash", crash))
    job = server.submit("crash", items_job([1], batch_size=1, max_worker_restarts=1))

    status = server.wait("crash", job["job_id"], timeout=30)

    assert status["status"] == "status_worker_error", status
    assert re.search(r"worker w\d+ exited with code 3", status["message"])
    # A crash is not a predict error: the batch went back to the queue each time.
    assert status["batches_in_queue"] == 1
    assert server.failed("crash", job["job_id"]) == []
    assert len(server.workers("crash", job["job_id"])) == 2
    assert "exited with code 3" in server.logs("crash", job["job_id"])


# --- status_worker_oom --------------------------------------------------------------------


@pytest.mark.slow
def test_worker_oom_names_the_worker_and_the_limit(server: Server, tmp_path: Path) -> None:
    predictor = (SAMPLES / "testbench" / "predictor.py").read_text()
    server.deploy(make_project(tmp_path, "hog", predictor, compute={"mem": "64Mi"}))
    job = server.submit(
        "hog",
        items_job([1], batch_size=1, max_worker_restarts=1, config={"hog_mb": 200, "sleep_s": 1}),
    )

    status = server.wait("hog", job["job_id"], timeout=40)

    assert status["status"] == "status_worker_oom", status
    assert re.search(r"\bworker w\d+ ", status["message"])
    assert "64Mi" in status["message"]
    # Each OOM kill put the batch back; the job gave up once its restarts were spent.
    assert status["batches_in_queue"] == 1
    assert status["batch_metrics"]["succeeded"] == 0
    workers = server.workers("hog", job["job_id"])
    assert len(workers) == 2
    assert {w["reason"] for w in workers} == {"oom"}
    assert "64Mi" in server.logs("hog", job["job_id"])


# --- status_timed_out ---------------------------------------------------------------------


def test_timed_out_job_ends_and_its_workers_stop(server: Server, testbench: str) -> None:
    job = server.submit(testbench, items_job([1], batch_size=1, timeout=1, config={"sleep_s": 5}))

    status = server.wait(testbench, job["job_id"], timeout=20)

    assert status["status"] == "status_timed_out", status
    assert "timeout of 1s" in status["message"]
    assert "end_time" in status
    server.wait_workers_gone(testbench, job["job_id"])
    assert server.status(testbench, job["job_id"])["status"] == "status_timed_out"


@pytest.mark.slow
def test_timeout_counts_from_submission_even_while_enqueuing(
    server: Server, testbench: str, tmp_path: Path
) -> None:
    # Enqueuing a million lines takes seconds even on a fast machine; a 10 ms timeout
    # ends the job at the supervisor's first tick (0.2 s here), whatever the machine.
    count = 1_000_000
    data = write_jsonl(tmp_path / "data" / "many.jsonl", ["1"] * count)
    job = server.submit(
        testbench,
        {"timeout": 0.01, "delimited_files": {"s3_paths": [str(data)], "batch_size": 1}},
    )

    status = server.wait(testbench, job["job_id"], timeout=20)

    assert status["status"] == "status_timed_out", status
    assert "timeout of 0.01s" in status["message"]
    assert status["batch_metrics"]["total"] < count  # enqueuing was cut short
    assert sum(status["worker_stats"].values()) == 0


# --- status_stopped -----------------------------------------------------------------------


@pytest.mark.slow
def test_stopped_job_stays_stopped_and_keeps_its_results(server: Server, testbench: str) -> None:
    job = server.submit(
        testbench, items_job(list(range(30)), batch_size=1, workers=2, config={"sleep_s": 0.5})
    )
    job_id = job["job_id"]
    server.wait_for(testbench, job_id, lambda s: s["batch_metrics"]["succeeded"] >= 2, timeout=30)

    response = server.http.delete(f"/{testbench}/{job_id}")

    assert response.status_code == 200
    assert response.json() == {"message": f"stopped job {job_id}"}
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:  # terminal statuses stick
        assert server.status(testbench, job_id)["status"] == "status_stopped"
        time.sleep(0.2)
    status = server.wait_workers_gone(testbench, job_id)
    assert status["status"] == "status_stopped"
    assert status["message"] == "stopped by request"
    assert {w["reason"] for w in server.workers(testbench, job_id)} == {"stopped"}
    assert "end_time" in status
    done = status["batch_metrics"]["succeeded"]
    assert 2 <= done < 30
    results = server.results(testbench, job_id)
    assert len(results) == done
    assert [r["result"]["item"] for r in results] == [r["item_index"] for r in results]
    time.sleep(1)  # nothing more runs once the workers are gone
    assert server.status(testbench, job_id)["batch_metrics"]["succeeded"] == done


# --- status_unexpected_error --------------------------------------------------------------


def test_unexpected_error_when_a_worker_cannot_be_started(tmp_path: Path, backend: str) -> None:
    if backend != "process":
        pytest.skip("worker_python is a setting of the process backend")
    srv = Server(tmp_path / "home", backend=backend, worker_python="/nonexistent/python")
    srv.home.mkdir()
    srv.start()
    try:
        srv.deploy(SAMPLES / "testbench")
        job = srv.submit("testbench", items_job([1, 2], batch_size=1))

        status = srv.wait("testbench", job["job_id"], timeout=20)

        assert status["status"] == "status_unexpected_error", status
        assert "/nonexistent/python" in status["message"]
        assert "/nonexistent/python" in srv.logs("testbench", job["job_id"])
    finally:
        left = srv.cleanup()
    assert not left


# --- status_enqueuing ---------------------------------------------------------------------


@pytest.mark.slow
def test_a_large_job_is_answered_while_still_enqueuing(server: Server, testbench: str) -> None:
    count = 60_000
    job = server.submit(testbench, items_job(list(range(count)), batch_size=1))
    job_id = job["job_id"]

    assert job["status"] == "status_enqueuing"
    seen = [job["status"]]
    deadline = time.monotonic() + 30
    while seen[-1] == "status_enqueuing" and time.monotonic() < deadline:
        status = server.status(testbench, job_id)
        seen.append(status["status"])
    assert seen[-1] == "status_running", seen
    assert status["batch_metrics"]["total"] == count
    assert status["items_enqueued"] == count
    counted = status["batches_in_queue"] + status["batches_in_flight"]
    assert counted + status["batch_metrics"]["succeeded"] == count
    server.wait_for(testbench, job_id, lambda s: s["batch_metrics"]["succeeded"] > 0, timeout=20)

    assert server.http.delete(f"/{testbench}/{job_id}").status_code == 200
    assert server.wait_workers_gone(testbench, job_id)["status"] == "status_stopped"


@pytest.mark.slow
def test_a_job_stopped_while_enqueuing_never_starts_a_worker(
    server: Server, testbench: str, tmp_path: Path
) -> None:
    count = 300_000  # streamed from a file: enqueuing them takes a while
    data = write_jsonl(tmp_path / "data" / "many.jsonl", ["1"] * count)
    job = server.submit(testbench, {"delimited_files": {"s3_paths": [str(data)], "batch_size": 1}})
    job_id = job["job_id"]

    response = server.http.delete(f"/{testbench}/{job_id}")

    assert response.json() == {"message": f"stopped job {job_id}"}
    # Enqueuing notices the stop at its next chunk and drops the job's source (the store
    # keeps a source only while enqueuing it; the one look past HTTP here). Once it is gone,
    # nothing can start a worker for the job any more: it is stopped, and stays so.
    deadline = time.monotonic() + 30
    while _sources(server) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _sources(server) == 0
    status = server.status(testbench, job_id)
    assert status["status"] == "status_stopped"
    assert status["batch_metrics"]["total"] < count
    assert sum(status["worker_stats"].values()) == 0
    assert server.workers(testbench, job_id) == []


def _sources(server: Server) -> int:
    with sqlite3.connect(server.home / "cortex.db") as conn:
        return int(conn.execute("SELECT count(*) FROM jobsource").fetchone()[0])


# --- config, dry runs, concurrent jobs ----------------------------------------------------


def test_job_config_is_deep_merged_over_the_api_config(server: Server, tmp_path: Path) -> None:
    api_config = {"a": {"x": 1, "y": 2}, "b": "api"}
    project = make_project(tmp_path, "echo-config", ECHO_CONFIG)
    api = {
        "name": "echo-config",
        "kind": "BatchAPI",
        "predictor": {"type": "python", "path": "predictor.py", "config": api_config},
    }
    (project / "cortex.yaml").write_text(json.dumps([api]))  # JSON is YAML
    server.deploy(project)
    merged = {"a": {"x": 1, "y": 3}, "b": "api", "c": "job"}

    job = server.submit(
        "echo-config", items_job([7], batch_size=1, config={"a": {"y": 3}, "c": "job"})
    )
    status = server.wait("echo-config", job["job_id"])

    assert status["status"] == "status_succeeded", status
    assert job["config"] == merged
    assert status["config"] == merged
    [result] = server.results("echo-config", job["job_id"])
    assert result["result"] == {"config": merged, "items": [7]}


def test_dry_run_counts_batches_and_enqueues_nothing(server: Server, testbench: str) -> None:
    response = server.http.post(
        f"/{testbench}",
        params={"dryRun": "true"},
        json=items_job(list(range(10)), batch_size=3, workers=2),
    )

    assert response.status_code == 200, response.text
    assert response.json()["batches"] == 4
    assert response.json()["items"] == 10
    assert response.json()["workers"] == 2
    assert server.http.get(f"/{testbench}").json()["jobs"] == []


@pytest.mark.slow
def test_two_jobs_on_one_api_run_at_once_without_counting_a_batch_twice(
    server: Server, testbench: str
) -> None:
    first = list(range(40))
    second = list(range(1000, 1040))
    config = {"sleep_s": 0.05}
    jobs = [
        server.submit(testbench, items_job(items, batch_size=1, workers=4, config=config))
        for items in (first, second)
    ]

    ended = []
    for job, items in zip(jobs, (first, second), strict=True):
        status = server.wait(testbench, job["job_id"])
        ended.append(status)
        assert status["status"] == "status_succeeded", status
        assert status["batch_metrics"]["succeeded"] == 40
        assert status["batch_metrics"]["failed"] == 0
        assert status["batch_metrics"]["total"] == 40
        results = server.results(testbench, job["job_id"])
        assert [r["item_index"] for r in results] == list(range(40))
        assert [r["result"]["item"] for r in results] == items
        stats = server.wait_workers_gone(testbench, job["job_id"])["worker_stats"]
        assert stats["succeeded"] == 4
        assert stats["failed"] == 0
    assert ended[1]["start_time"] < ended[0]["end_time"]  # they did run at the same time
