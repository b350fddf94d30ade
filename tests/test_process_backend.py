"""What only the process backend does: GPU pinning through CUDA_VISIBLE_DEVICES."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Server, make_project

ECHO_DEVICES = """
import os

class PythonPredictor:
    def predict(self, payload):
        return [os.environ.get("CUDA_VISIBLE_DEVICES") for _ in payload]
"""


@pytest.fixture
def four_gpu_server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "home", env={"CORTEX_TUI_GPUS": "0,1,2,3"})
    srv.home.mkdir()
    srv.start()
    yield srv
    assert srv.cleanup() == []


def test_each_worker_gets_its_own_gpus(four_gpu_server: Server, tmp_path: Path) -> None:
    project = make_project(tmp_path, "gpus", ECHO_DEVICES, compute={"gpu": 2})
    four_gpu_server.deploy(project)
    job = four_gpu_server.submit(
        "gpus", {"workers": 2, "item_list": {"items": [1, 2], "batch_size": 1}}
    )
    assert four_gpu_server.wait("gpus", job["job_id"])["status"] == "status_succeeded"
    workers = four_gpu_server.workers("gpus", job["job_id"])
    by_worker = {w["worker"]: w["handle"]["cuda_visible_devices"] for w in workers}
    assert by_worker == {"w0": "0,1", "w1": "2,3"}
    seen = {r["result"] for r in four_gpu_server.results("gpus", job["job_id"])}
    assert seen <= {"0,1", "2,3"} and seen


def test_asking_for_more_gpus_than_the_host_has_is_refused(
    four_gpu_server: Server, tmp_path: Path
) -> None:
    project = make_project(tmp_path, "greedy", ECHO_DEVICES, compute={"gpu": 8})
    four_gpu_server.deploy(project)
    r = four_gpu_server.http.post("/greedy", json={"item_list": {"items": [1], "batch_size": 1}})
    assert r.status_code == 400
    assert "compute.gpu" in r.json()["error"] and "only 4" in r.json()["error"]


def test_workers_without_gpus_see_no_device(server: Server, tmp_path: Path) -> None:
    project = make_project(tmp_path, "cpu-only", ECHO_DEVICES)
    server.deploy(project)
    job = server.submit("cpu-only", {"item_list": {"items": [1], "batch_size": 1}})
    assert server.wait("cpu-only", job["job_id"])["status"] == "status_succeeded"
    assert [r["result"] for r in server.results("cpu-only", job["job_id"])] == [""]


def test_torch_sample_runs_on_cpu(server: Server, tmp_path: Path) -> None:
    """The GPU sample falls back to CPU; it needs PyTorch, which CI does not install."""
    pytest.importorskip("torch", reason="the torch-gpu sample needs PyTorch in the worker env")
    import shutil

    import yaml
    from conftest import SAMPLES

    project = tmp_path / "torch-gpu"
    shutil.copytree(SAMPLES / "torch-gpu", project)
    spec = yaml.safe_load((project / "cortex.yaml").read_text())
    spec[0]["compute"]["gpu"] = 0
    (project / "cortex.yaml").write_text(yaml.safe_dump(spec))
    server.deploy(project)
    job = server.submit("torch-gpu", {"item_list": {"items": [[1, 2, 3, 4]], "batch_size": 1}})
    assert server.wait("torch-gpu", job["job_id"])["status"] == "status_succeeded"
    assert server.results("torch-gpu", job["job_id"])[0]["result"]["device"] == "cpu"
