"""The per-API HTTP endpoints, field by field, as reference/cortex-batch-api-deployment.md
defines them: names, types, when optional fields appear, and the OpenAPI document."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from conftest import Server, make_project

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
SUBMIT_FIELDS = {
    "job_id": str,
    "api_name": str,
    "workers": int,
    "batches_per_worker": int,
    "config": dict,
    "api_id": str,
    "sqs_url": str,
    "created_time": str,
}
STATUS_FIELDS = {
    **SUBMIT_FIELDS,
    "status": str,
    "batches_in_queue": int,
    "batch_metrics": dict,
    "worker_stats": dict,
    "start_time": str,
}
WORKER_STATS = ("pending", "initializing", "running", "succeeded", "failed", "stalled")


def check_types(obj: dict[str, Any], fields: dict[str, type]) -> None:
    """Assert ``obj`` has each field with exactly its type (a bool is not an int)."""
    for name, kind in fields.items():
        assert name in obj, f"missing {name!r} in {obj}"
        assert type(obj[name]) is kind, f"{name}: {obj[name]!r} is not a {kind.__name__}"


def check_job_status(status: dict[str, Any], job: dict[str, Any]) -> None:
    """Assert the reference's job_status fields, and that they agree with the submission."""
    check_types(status, STATUS_FIELDS)
    for name in SUBMIT_FIELDS:
        assert status[name] == job[name], name
    assert RFC3339_UTC.match(status["created_time"])
    assert RFC3339_UTC.match(status["start_time"])
    metrics = status["batch_metrics"]
    for name in ("succeeded", "failed", "total"):
        assert type(metrics[name]) is int, name
    assert set(metrics) <= {"succeeded", "failed", "total", "avg_time_per_batch"}
    assert set(status["worker_stats"]) == set(WORKER_STATS)
    assert all(type(n) is int for n in status["worker_stats"].values())


def test_submit_and_status_fields_match_the_reference(server: Server, testbench: str) -> None:
    body = {"workers": 2, "item_list": {"items": [1, 2], "batch_size": 1}, "config": {"sleep_s": 3}}

    response = server.http.post(f"/{testbench}", json=body)

    assert response.status_code == 200, response.text
    job = response.json()
    check_types(job, SUBMIT_FIELDS)
    assert job["api_name"] == testbench
    assert job["workers"] == 2
    assert job["batches_per_worker"] == 1
    assert job["config"] == {"sleep_s": 3, "echo": True}  # the API's config, merged
    assert RFC3339_UTC.match(job["created_time"])
    assert job["sqs_url"].startswith("http")

    running = server.wait(testbench, job["job_id"], {"status_running"}, timeout=20)
    check_job_status(running, job)
    assert running["batch_metrics"]["succeeded"] == 0
    assert "avg_time_per_batch" not in running["batch_metrics"]  # no batch completed yet
    assert "end_time" not in running  # only present once the job has ended
    assert running["batch_metrics"]["total"] == 2

    ended = server.wait(testbench, job["job_id"], timeout=30)
    assert ended["status"] == "status_succeeded", ended
    check_job_status(ended, job)
    assert type(ended["batch_metrics"]["avg_time_per_batch"]) is float
    assert ended["batch_metrics"]["avg_time_per_batch"] >= 3
    assert RFC3339_UTC.match(ended["end_time"])
    assert ended["created_time"] <= ended["start_time"] <= ended["end_time"]


def test_stop_answers_exactly_the_reference_message(server: Server, testbench: str) -> None:
    body = {"item_list": {"items": [1, 2, 3], "batch_size": 1}, "config": {"sleep_s": 2}}
    job_id = server.submit(testbench, body)["job_id"]

    response = server.http.delete(f"/{testbench}/{job_id}")

    assert response.status_code == 200
    assert response.json() == {"message": f"stopped job {job_id}"}
    assert server.status(testbench, job_id)["status"] == "status_stopped"
    again = server.http.delete(f"/{testbench}/{job_id}")  # stopping twice is harmless
    assert again.status_code == 200
    assert again.json() == {"message": f"job {job_id} was already stopped"}


def test_stopping_a_finished_job_is_a_conflict(server: Server, testbench: str) -> None:
    job_id = server.submit(testbench, {"item_list": {"items": [1], "batch_size": 1}})["job_id"]
    assert server.wait(testbench, job_id)["status"] == "status_succeeded"

    response = server.http.delete(f"/{testbench}/{job_id}")

    assert response.status_code == 409
    assert "status_succeeded" in response.json()["error"]
    assert server.status(testbench, job_id)["status"] == "status_succeeded"


def test_listing_an_apis_jobs_gives_the_newest_first(server: Server, testbench: str) -> None:
    body = {"item_list": {"items": [1], "batch_size": 1}}
    submitted = [server.submit(testbench, body)["job_id"] for _ in range(3)]

    response = server.http.get(f"/{testbench}")

    assert response.status_code == 200
    jobs = response.json()["jobs"]
    assert [j["job_id"] for j in jobs] == submitted[::-1]
    assert [j["created_time"] for j in jobs] == sorted(
        (j["created_time"] for j in jobs), reverse=True
    )
    for job in jobs:
        assert job["api_name"] == testbench
        assert set(job["worker_stats"]) == set(WORKER_STATS)
    for job_id in submitted:  # their workers end before the server does
        server.wait(testbench, job_id)


def test_openapi_lists_the_per_api_endpoints(server: Server) -> None:
    response = server.http.get("/_cortex/openapi.json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {"post", "get"} <= set(paths["/{api_name}"])
    assert {"get", "delete"} <= set(paths["/{api_name}/{job_id}"])
    parameters = paths["/{api_name}"]["post"]["parameters"]
    assert "dryRun" in {p["name"] for p in parameters}
    assert "post" in paths["/_cortex/apis"]


def test_an_api_cannot_take_the_management_prefix(server: Server, tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        "x",
        "class PythonPredictor:\n    def predict(self, payload):\n        return payload\n",
    )
    (project / "cortex.yaml").write_text(
        "- name: _cortex\n  kind: BatchAPI\n  predictor:\n    path: predictor.py\n"
    )

    response = server.http.post("/_cortex/apis", json={"project_dir": str(project)})

    assert response.status_code == 400
    error = response.json()["error"]
    assert "cortex.yaml" in error
    assert 'name "_cortex" is invalid' in error
    assert server.http.get("/_cortex/apis").json()["apis"] == []
    assert server.http.get("/_cortex/health").status_code == 200


def test_logs_of_an_unknown_worker_are_a_404_naming_the_known_ones(
    server: Server, testbench: str
) -> None:
    job = server.submit("testbench", {"item_list": {"items": [1], "batch_size": 1}})
    server.wait("testbench", job["job_id"])
    r = server.http.get(
        f"/_cortex/apis/testbench/jobs/{job['job_id']}/logs", params={"worker": "w9"}
    )
    assert r.status_code == 404
    assert 'no worker "w9"' in r.json()["error"] and "w0" in r.json()["error"]
    r = server.http.get(
        f"/_cortex/apis/testbench/jobs/{job['job_id']}/logs", params={"worker": "w0"}
    )
    assert r.status_code == 200 and "[w0]" in r.text and "[orchestrator]" not in r.text


def test_a_unique_prefix_or_latest_names_a_job_and_an_ambiguous_one_lists_them(
    server: Server, testbench: str
) -> None:
    body = {"item_list": {"items": [1], "batch_size": 1}}
    first, second = (server.submit(testbench, body)["job_id"] for _ in range(2))
    shared = next(i for i in range(16) if first[i] != second[i])  # ids start with the time
    server.wait(testbench, second)

    by_prefix = server.http.get(f"/{testbench}/{second[: shared + 1]}")
    latest = server.http.get(f"/{testbench}/latest")
    logs = server.http.get(f"/_cortex/apis/{testbench}/jobs/{first[: shared + 1]}/results")
    ambiguous = server.http.get(f"/{testbench}/{first[:shared]}")
    unknown = server.http.get(f"/{testbench}/fff")

    assert by_prefix.status_code == 200
    assert by_prefix.json()["job_status"]["job_id"] == second
    assert latest.json()["job_status"]["job_id"] == second
    assert logs.status_code == 200
    assert ambiguous.status_code == 400
    error = ambiguous.json()["error"]
    assert f'job id "{first[:shared]}" of api "{testbench}" is ambiguous' in error
    assert first in error and second in error
    assert unknown.status_code == 404
