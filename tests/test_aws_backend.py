"""The aws backend under a real moto server: workers are AWS Batch jobs (real containers on
the local engine) talking to the orchestrator over SQS and S3.

The lifecycle contract runs on aws too (test_lifecycle.py, ``ON_AWS`` in conftest); here
is what is particular to aws: the same answers as on process, an orchestrator killed
mid-job, a queue deleted under a job, what the user must fix before anything runs, and
AWS answers moto cannot give (stubbed clients, recorded responses).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import motokit
import pytest
from conftest import ROOT, SAMPLES, Server, items_job, make_project

#: Fields that differ between backends by nature: which backend, when, the queue, and
#: which workers were still on their way out at the moment the job ended (compared once
#: they are gone).
_BY_NATURE = {
    "job_id", "backend", "created_time", "start_time", "end_time", "sqs_url", "api_id",
    "avg_time_per_batch", "worker_stats",
}  # fmt: skip


def _comparable(status: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in status.items() if k not in _BY_NATURE}
    out["batch_metrics"] = {k: v for k, v in status["batch_metrics"].items() if k not in _BY_NATURE}
    return out


def _without_workers(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Results without which worker ran each batch (the testbench echoes it too)."""
    return [{**row, "worker": None, "result": {**row["result"], "worker": None}} for row in rows]


def test_a_job_answers_as_it_does_on_process_but_for_backend_times_and_queue(
    server: Server, testbench: str, tmp_path: Path
) -> None:
    body = items_job(list(range(12)), batch_size=3, workers=2, config={"fail_items": [4]})
    local = Server(tmp_path / "process-home", backend="process")
    local.home.mkdir()
    local.start()
    try:
        local.deploy(SAMPLES / "testbench")
        on_process = local.wait("testbench", local.submit("testbench", body)["job_id"])
        process_stats = local.wait_workers_gone("testbench", on_process["job_id"])
        process_results = local.results("testbench", on_process["job_id"])
    finally:
        assert local.cleanup() == []
    job = server.submit(testbench, body)

    on_aws = server.wait(testbench, job["job_id"], timeout=90)
    aws_stats = server.wait_workers_gone(testbench, job["job_id"], timeout=60)

    assert on_aws["status"] == "status_completed_with_failures", on_aws
    assert _comparable(on_aws) == _comparable(on_process)
    assert aws_stats["worker_stats"] == process_stats["worker_stats"]
    assert on_aws["backend"] == "aws"
    assert on_aws["sqs_url"].endswith(f"-{job['job_id']}-work")
    assert _without_workers(server.results(testbench, job["job_id"])) == _without_workers(
        process_results
    )


def test_the_hooks_output_and_every_workers_lines_reach_the_logs(
    server: Server, testbench: str
) -> None:
    job = server.submit(testbench, items_job(list(range(4)), batch_size=1, workers=2))

    assert server.wait(testbench, job["job_id"], timeout=90)["status"] == "status_succeeded"
    server.wait_workers_gone(testbench, job["job_id"], timeout=60)

    deadline = time.monotonic() + 20  # the last lines are copied as the workers end
    while "job complete" not in server.logs(testbench, job["job_id"]):
        assert time.monotonic() < deadline, server.logs(testbench, job["job_id"])
        time.sleep(0.5)
    logs = server.logs(testbench, job["job_id"])
    assert f"job complete: {job['job_id']} 4 0 4" in logs
    assert logs.count("running on_job_complete") == 1
    for index in range(4):
        assert f"batch {index}: 1 items" in logs


def test_batches_and_results_over_200_kib_travel_through_s3_and_count_once(
    server: Server, testbench: str
) -> None:
    # Items of 150 KB: each 2-item batch (300 KB) is over SQS's limit as a message, and so
    # is the event carrying its echoed result; quotes in the items grow it once escaped.
    items = [f'{i}:"' + "x" * 150_000 for i in range(4)]
    job = server.submit(testbench, items_job(items, batch_size=2, workers=1))

    status = server.wait(testbench, job["job_id"], timeout=90)

    assert status["status"] == "status_succeeded", status
    assert status["batch_metrics"]["succeeded"] == 2
    assert result_items_of(server, testbench, job["job_id"]) == items


def result_items_of(server: Server, api: str, job_id: str) -> list[Any]:
    return [row["result"]["item"] for row in server.results(api, job_id)]


@pytest.mark.slow
def test_an_orchestrator_killed_mid_job_counts_each_batch_once_after_restart(
    server: Server, testbench: str
) -> None:
    count = 40
    job = server.submit(
        testbench, items_job(list(range(count)), batch_size=1, workers=2, config={"sleep_s": 0.2})
    )
    job_id = job["job_id"]
    server.wait_for(testbench, job_id, lambda s: s["batch_metrics"]["succeeded"] >= 5, timeout=90)

    server.kill()  # the workers go on: their events wait on the events queue
    time.sleep(3)
    server.start()
    status = server.wait(testbench, job_id, timeout=120)

    assert status["status"] == "status_succeeded", status
    assert status["batch_metrics"]["succeeded"] == count
    assert status["batches_in_queue"] == status["batches_in_flight"] == 0
    results = server.results(testbench, job_id)
    indexes = Counter(r["item_index"] for r in results)
    assert sorted(indexes) == list(range(count))
    assert set(indexes.values()) == {1}


def test_a_queue_deleted_under_a_running_job_ends_it_naming_the_queue(
    server: Server, testbench: str
) -> None:
    assert server.moto is not None
    job = server.submit(
        testbench, items_job(list(range(200)), batch_size=1, config={"sleep_s": 0.2})
    )
    job_id = job["job_id"]
    # Well into the job: a queue that AWS says is missing in its first seconds may just
    # not be visible yet, so only an older one is taken for deleted.
    running = server.wait_for(
        testbench, job_id, lambda s: s["batch_metrics"]["succeeded"] >= 15, timeout=90
    )

    server.moto.client("sqs").delete_queue(QueueUrl=running["sqs_url"])
    status = server.wait(testbench, job_id, timeout=60)

    assert status["status"] == "status_unexpected_error", status
    assert "was deleted while the job ran" in status["message"]
    server.wait_workers_gone(testbench, job_id, timeout=60)


def test_teardown_force_under_a_running_job_ends_it_and_its_workers(
    server: Server, testbench: str
) -> None:
    job = server.submit(
        testbench, items_job(list(range(100)), batch_size=1, config={"sleep_s": 0.2})
    )
    job_id = job["job_id"]
    server.wait_for(testbench, job_id, lambda s: s["batch_metrics"]["succeeded"] >= 3, timeout=90)

    done = subprocess.run(
        [sys.executable, "-m", "cortex_tui", "aws", "teardown", "--force"],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
        env={**os.environ, **server.env, "CORTEX_TUI_HOME": str(server.home)},
    )  # fmt: skip

    assert done.returncode == 0, done.stdout + done.stderr
    status = server.wait(testbench, job_id, timeout=60)
    assert status["status"] == "status_unexpected_error", status
    # Whichever the orchestrator meets first: the SQS queue, or the Batch job queue that
    # replacement workers would be submitted to.
    message = status["message"]
    assert "was deleted while the job ran" in message or "does not exist" in message, message
    server.wait_workers_gone(testbench, job_id, timeout=60)


# --- what the user must fix: 400s that say what, never a 500 ------------------------------


@pytest.fixture
def bare(tmp_path: Path, moto_server: motokit.MotoServer) -> Any:
    """An aws orchestrator whose home was never set up (``cortex-tui aws setup`` not run)."""
    srv = Server(tmp_path / "home", backend="aws", env=moto_server.env, aws_image_registry="")
    srv.home.mkdir()
    srv.start()
    yield srv
    assert srv.cleanup() == []


@pytest.mark.aws
def test_deploying_before_aws_setup_names_what_is_missing_and_the_fix(bare: Server) -> None:
    motokit.require_moto()
    response = bare.http.post("/_cortex/apis", json={"project_dir": str(SAMPLES / "testbench")})

    assert response.status_code == 400, response.text
    assert "job queue" in response.json()["error"]
    assert "cortex-tui aws setup" in response.json()["error"]


@pytest.mark.aws
def test_no_credentials_is_a_400_naming_the_settings(tmp_path: Path) -> None:
    motokit.require_moto(docker=False)
    empty = tmp_path / "empty"
    empty.write_text("")
    env = {
        "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
        "AWS_SHARED_CREDENTIALS_FILE": str(empty),
        "AWS_CONFIG_FILE": str(empty), "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }  # fmt: skip
    srv = Server(tmp_path / "home", backend="aws", env=env)
    srv.home.mkdir()
    srv.start()
    try:
        response = srv.http.post("/_cortex/apis", json={"project_dir": str(SAMPLES / "testbench")})
    finally:
        assert srv.cleanup() == []

    assert response.status_code == 400, response.text
    assert "no AWS credentials found" in response.json()["error"]
    assert "AWS_PROFILE" in response.json()["error"]


# --- AWS answers moto cannot give: recorded responses, stubbed clients -----------------------


def test_an_out_of_memory_batch_job_is_an_oom_naming_batchs_reason() -> None:
    from orchestrator.backends.aws.backend import ended_probe

    recorded = {  # a ListJobs summary as AWS returns it for a container killed for memory
        "jobName": "ctui-0123456789-1a2b3c4d5e6f7a8b-w1",
        "status": "FAILED",
        "statusReason": "Essential container in task exited",
        "stoppedAt": 1_795_978_046_363,
        "container": {
            "exitCode": 137,
            "reason": "OutOfMemoryError: Container killed due to memory usage",
        },
    }

    probe = ended_probe(recorded)

    assert probe.oom
    assert not probe.alive
    assert probe.exit_code == 137
    assert "OutOfMemoryError" in (probe.message or "")
    assert probe.ended_at == pytest.approx(1_795_978_046.363)


def test_a_failed_batch_job_without_a_reason_says_so_with_its_exit_code() -> None:
    from orchestrator.backends.aws.backend import ended_probe

    probe = ended_probe({"jobName": "ctui-x-job-w0", "status": "FAILED"})

    assert not probe.oom
    assert probe.message == "worker w0 ended with no exit code (AWS Batch job ctui-x-job-w0:" \
        " no reason given)"  # fmt: skip


@pytest.mark.parametrize(
    ("code", "expected_status", "says"),
    [
        ("AccessDenied", 400, "access denied by AWS"),
        ("ExpiredToken", 400, "refresh them"),
        ("NoSuchBucket", 400, "cortex-tui aws setup"),
        ("ThrottlingException", 502, "ThrottlingException"),
    ],
)
def test_aws_errors_are_explained_with_the_status_they_deserve(
    code: str, expected_status: int, says: str
) -> None:
    import boto3
    from botocore.stub import Stubber

    from orchestrator.aws import explain

    s3 = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )
    with Stubber(s3) as stub:
        stub.add_client_error("head_bucket", service_error_code=code, http_status_code=403)
        with pytest.raises(Exception) as raised:
            s3.head_bucket(Bucket="b")

    error = explain(raised.value, "reading s3://b")

    assert error.status_code == expected_status
    assert says in error.message
    assert error.message.startswith("reading s3://b")


def test_a_throttled_listing_is_retried_by_the_next_tick_not_a_crash(tmp_path: Path) -> None:
    import boto3
    from botocore.stub import Stubber

    from orchestrator.aws import AwsError
    from orchestrator.backends.aws.backend import AwsBackend
    from orchestrator.settings import Settings

    backend = AwsBackend(Settings(home=tmp_path, aws_region="us-east-1"))
    batch = boto3.client(
        "batch", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )
    backend.clients._clients["batch"] = batch
    handle = {"batch_job_id": "j-1", "batch_job": "ctui-x-job-w0", "job_id": "job"}
    with Stubber(batch) as stub:
        stub.add_client_error("list_jobs", service_error_code="ThrottlingException")
        with pytest.raises(AwsError, match="ThrottlingException"):
            backend.probe_worker(handle)
        stub.add_response(
            "list_jobs",
            {"jobSummaryList": [{"jobId": "j-1", "jobName": "ctui-x-job-w0", "status": "RUNNING"}]},
        )
        assert backend.probe_worker(handle).alive
    backend.close()


@pytest.mark.parametrize(
    ("asked", "given"),
    [((1, 256), (1.0, 2048)), ((0.25, 100), (0.25, 512)), ((0.3, 3000), (0.5, 3072)),
     ((2, 20000), (4.0, 20480)), ((16, 122880), (16.0, 122880))],
)  # fmt: skip
def test_compute_becomes_the_smallest_fargate_size_that_holds_it(
    asked: tuple[float, int], given: tuple[float, int]
) -> None:
    from orchestrator.backends.aws.backend import fargate_size

    assert fargate_size(*asked) == given


def test_more_than_fargates_largest_size_is_a_400_saying_what_to_do() -> None:
    from orchestrator.backends.aws.backend import fargate_size
    from orchestrator.errors import InvalidRequest

    with pytest.raises(InvalidRequest, match="more than Fargate's largest task"):
        fargate_size(32, 1024)


def test_more_than_fargate_holds_is_refused_before_a_build_and_at_submit(
    server: Server, tmp_path: Path
) -> None:
    predictor = "class PythonPredictor:\n    def predict(self, payload):\n        return payload\n"
    on_aws = make_project(tmp_path / "a", "huge", predictor, compute={"cpu": 17})
    on_process = make_project(
        tmp_path / "p", "huge-local", predictor, compute={"cpu": 17}, backend="process"
    )

    deploy = server.http.post("/_cortex/apis", json={"project_dir": str(on_aws)})
    assert server.deploy(on_process)["apis"][0]["result"] == "created"
    submit = server.http.post("/huge-local", json={**items_job([1]), "backend": "aws"})

    for refused in (deploy, submit):
        assert refused.status_code == 400, refused.text
        assert "more than Fargate's largest task" in refused.json()["error"]
    assert not list(server.home.glob("builds/huge*")), "an image was built for it"


# --- GPU samples travel as events of their own ---------------------------------------------


def test_a_gpu_workers_heartbeat_sends_its_samples_as_a_signed_event(
    moto_server: motokit.MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from runtime.protocol import JOB_KEY_ENV, sign
    from runtime.sqs_transport import SqsTransport

    for name, value in moto_server.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(JOB_KEY_ENV, "the-job-key")
    sqs, s3 = moto_server.client("sqs"), moto_server.client("s3")
    work = sqs.create_queue(QueueName="gpu-test-work")["QueueUrl"]
    events = sqs.create_queue(QueueName="gpu-test-events")["QueueUrl"]
    s3.create_bucket(Bucket="gpu-test")
    where = f"sqs://?work={work}&events={events}&bucket=gpu-test&job=j1"
    sample = {"index": 0, "uuid": "GPU-1", "utilization_pct": 87.0,
              "memory_used_bytes": 1 << 30, "memory_total_bytes": 80 << 30}  # fmt: skip

    SqsTransport(where, "j1-w0", "its-secret").heartbeat([], gpus=[sample])
    SqsTransport(where, "j1-w0", "its-secret").heartbeat([])  # no samples: no event

    messages = sqs.receive_message(QueueUrl=events, MaxNumberOfMessages=10)["Messages"]
    [body] = [json.loads(m["Body"]) for m in messages]
    assert body["worker_id"] == "j1-w0"
    assert body["sig"] == sign("its-secret", body["event"])
    assert json.loads(body["event"]) == {"kind": "gpus", "gpus": [sample]}


def test_a_running_job_waits_out_an_aws_that_does_not_answer_then_ends_saying_so(
    server: Server, testbench: str
) -> None:
    assert server.moto is not None
    relay = motokit.Relay(server.moto.port)  # the orchestrator and its workers reach AWS here
    relay.mend()
    server.stop()
    server.env = {**server.env, "AWS_ENDPOINT_URL": relay.url}
    server.settings = {**server.settings, "aws_unreachable_grace_s": "12"}
    server.start()
    job_id = server.submit(
        testbench, items_job(list(range(400)), batch_size=1, config={"sleep_s": 0.1})
    )["job_id"]
    server.wait_for(testbench, job_id, lambda s: s["batch_metrics"]["succeeded"] >= 5, timeout=90)

    relay.cut()  # shorter than the grace: waited out
    time.sleep(6)
    assert server.status(testbench, job_id)["status"] == "status_running"
    relay.mend()
    before = server.status(testbench, job_id)["batch_metrics"]["succeeded"]
    server.wait_for(
        testbench, job_id, lambda s: s["batch_metrics"]["succeeded"] > before, timeout=60
    )

    relay.cut()  # longer than the grace: the job ends, saying why
    status = server.wait(testbench, job_id, timeout=60)
    relay.mend()  # so its workers hear that it ended

    assert status["status"] == "status_unexpected_error", status
    assert "cannot reach AWS" in status["message"]
    assert "longer than aws_unreachable_grace_s (12s)" in status["message"]
    server.wait_workers_gone(testbench, job_id, timeout=90)
