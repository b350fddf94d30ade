"""The docker backend on the real engine: images, container hardening, GPUs, stop, restart.

The lifecycle contract suite (test_lifecycle.py) runs on docker too, through the
``backend`` fixture; these tests cover what only containers have.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dockerkit
import pytest
from conftest import ROOT, SAMPLES, Server, backend_settings, items_job, make_project

pytestmark = pytest.mark.docker

WHOAMI = """
import os, time

class PythonPredictor:
    def __init__(self, config):
        self.config = config
        print(f"uid={os.getuid()} token-set={'API_TOKEN' in os.environ}")

    def predict(self, payload):
        time.sleep(self.config.get("sleep_s", 0))
        return [{"item": item, "uid": os.getuid()} for item in payload]
"""


@pytest.fixture
def docker_server(tmp_path: Path) -> Iterator[Server]:
    """An orchestrator whose default backend is docker, with the no-leftovers check."""
    dockerkit.require_engine()
    dockerkit.ensure_base_image()
    srv = Server(tmp_path / "home", backend="docker", **backend_settings("docker", tmp_path))
    srv.home.mkdir()
    srv.start()
    yield srv
    left = srv.cleanup()
    assert not left, f"containers left behind: {left}"


def wait_containers(server: Server, count: int, timeout: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = [c for c in server.worker_containers() if c["State"] == "running"]
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, f"{len(found)} of {count} containers running"
        time.sleep(0.2)


def inspect(container_id: str) -> dict[str, Any]:
    client = dockerkit.client()
    try:
        return client.api.inspect_container(container_id)  # type: ignore[no-any-return]
    finally:
        client.close()


def test_deploy_builds_an_image_once_and_reuses_it_by_content(docker_server: Server) -> None:
    first = docker_server.deploy(SAMPLES / "testbench")["apis"][0]
    again = docker_server.deploy(SAMPLES / "testbench")["apis"][0]

    assert first["backend"] == "docker"
    assert re.fullmatch(r"cortex-tui-api/testbench:[0-9a-f]{16}", first["image"])
    assert again["image"] == first["image"]
    assert again["image_built"] is False
    assert again["result"] == "up_to_date"


READS_LINKS = """\
from pathlib import Path


class PythonPredictor:
    def predict(self, payload):
        return [Path("model.txt").read_text() + Path("current/v.txt").read_text() for _ in payload]
"""


def test_links_inside_the_project_reach_the_image(docker_server: Server, tmp_path: Path) -> None:
    project = make_project(tmp_path, "linked", READS_LINKS)
    (project / "weights").mkdir()
    (project / "weights" / "model.txt").write_text("m")
    (project / "weights" / "v.txt").write_text("1")
    (project / "model.txt").symlink_to("weights/model.txt")
    (project / "current").symlink_to("weights")
    docker_server.deploy(project)
    job = docker_server.submit("linked", items_job([1]))
    status = docker_server.wait("linked", job["job_id"], timeout=120)
    assert status["status"] == "status_succeeded", status
    assert [r["result"] for r in docker_server.results("linked", job["job_id"])] == ["m1"]


def test_a_failing_image_build_is_a_clear_deploy_error_with_the_log_tail(
    docker_server: Server, tmp_path: Path
) -> None:
    project = make_project(tmp_path, "badreqs", WHOAMI)
    (project / "requirements.txt").write_text("this is not a requirement !!\n")

    response = docker_server.http.post("/_cortex/apis", json={"project_dir": str(project)})

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert 'api "badreqs": building its image' in error
    assert "the last lines of the build log" in error
    assert "requirements.txt" in error  # pip's own complaint, from the log's tail
    [log] = (docker_server.home / "builds" / "badreqs").glob("*.log")
    assert "ERROR" in log.read_text()
    assert "\x1b" not in error + log.read_text()  # pip colours its errors; not for a log file


def test_a_missing_base_image_is_a_deploy_error_that_says_how_to_get_one(
    docker_server: Server, tmp_path: Path
) -> None:
    project = make_project(tmp_path, "nobase", WHOAMI)
    text = (project / "cortex.yaml").read_text()
    (project / "cortex.yaml").write_text(
        text.replace("predictor:\n", "predictor:\n    image: cortex-tui/no-such-base:0\n")
    )

    response = docker_server.http.post("/_cortex/apis", json={"project_dir": str(project)})

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert 'base image "cortex-tui/no-such-base:0" is not on this Docker engine' in error
    assert "cortex-tui image build-base" in error
    assert docker_server.http.get("/_cortex/apis").json()["apis"] == []


def test_workers_run_hardened_and_limited_on_the_host_network(
    docker_server: Server, tmp_path: Path
) -> None:
    project = make_project(
        tmp_path,
        "whoami",
        WHOAMI,
        compute={"cpu": 0.5, "mem": "128Mi"},
    )
    yaml_text = (project / "cortex.yaml").read_text()
    (project / "cortex.yaml").write_text(
        yaml_text.replace("predictor:\n", "predictor:\n    env:\n      API_TOKEN: s3cret-7781\n")
    )
    docker_server.deploy(project)
    job = docker_server.submit("whoami", items_job([1, 2], config={"sleep_s": 2}))

    [container] = wait_containers(docker_server, 1)
    info = inspect(container["Id"])
    status = docker_server.wait("whoami", job["job_id"])

    host = info["HostConfig"]
    assert host["NetworkMode"] == "host"
    assert host["PortBindings"] in (None, {})
    assert host["CapDrop"] == ["ALL"]
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert host["NanoCpus"] == 500_000_000
    assert host["Memory"] == host["MemorySwap"] == 128 * 2**20
    assert host["ShmSize"] == 256 * 2**20
    assert info["Config"]["User"] == "10001:10001"
    assert "API_TOKEN=s3cret-7781" in info["Config"]["Env"]
    labels = info["Config"]["Labels"]
    assert labels["cortex-tui.home"] == str(docker_server.home.resolve())
    assert labels["cortex-tui.api"] == "whoami"
    assert labels["cortex-tui.job"] == job["job_id"]
    assert labels["cortex-tui.worker"] == f"{job['job_id']}-w0"
    assert status["status"] == "status_succeeded", status
    assert [r["result"]["uid"] for r in docker_server.results("whoami", job["job_id"])] == [
        10001,
        10001,
    ]
    logs = docker_server.logs("whoami", job["job_id"])
    assert "[w0] uid=10001 token-set=True" in logs
    assert "s3cret-7781" not in logs  # the secret's value is never echoed
    assert "s3cret-7781" not in str(docker_server.workers("whoami", job["job_id"]))
    assert "s3cret-7781" not in str(status)


def test_gpu_job_without_an_nvidia_runtime_ends_worker_error_and_leaves_nothing(
    docker_server: Server, tmp_path: Path
) -> None:
    project = make_project(tmp_path, "gpu", WHOAMI, compute={"gpu": 1})
    docker_server.deploy(project)
    job = docker_server.submit("gpu", items_job([1, 2], workers=2))

    status = docker_server.wait("gpu", job["job_id"], timeout=30)

    assert status["status"] == "status_worker_error", status
    assert "no NVIDIA container runtime" in status["message"]
    assert "nvidia-container-toolkit" in status["message"]
    assert "could not select device driver" in status["message"]
    assert docker_server.worker_containers() == []


def test_gpu_device_requests_split_devices_between_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Start workers through the backend itself (no NVIDIA runtime here, so they cannot
    run) and read the device requests of the containers it created, kept for debugging."""
    dockerkit.require_engine()
    dockerkit.ensure_base_image()
    from orchestrator.backends import WorkerLaunch
    from orchestrator.backends.docker.backend import DockerBackend
    from orchestrator.errors import WorkerStartError
    from orchestrator.settings import Settings

    home = tmp_path / "home"
    settings = Settings(home=home, docker_keep_containers=True)
    settings.ensure_dirs()
    monkeypatch.setenv("CORTEX_TUI_GPUS", "0,1,2,3")  # the host's GPUs, as nvidia-smi would say
    backend = DockerBackend(settings)
    spec = {"name": "testbench", "predictor": {"path": "predictor.py"}, "compute": {"gpu": 2}}
    try:
        for slot in (0, 1):
            launch = WorkerLaunch(
                worker_id=f"job{slot}-w{slot}",
                job_id=f"job{slot}",
                api_name="testbench",
                slot=slot,
                transport="http://127.0.0.1:9",
                project_dir=SAMPLES / "testbench",
                api_spec=spec,
                log_path=home / "logs" / f"w{slot}.log",
            )
            with pytest.raises(WorkerStartError, match="no NVIDIA container runtime"):
                backend.start_worker(launch)
        requests = {
            c["Labels"]["cortex-tui.worker"]: inspect(c["Id"])["HostConfig"]["DeviceRequests"]
            for c in dockerkit.home_containers(home)
        }
        assert {worker: r[0]["DeviceIDs"] for worker, r in requests.items()} == {
            "job0-w0": ["0", "1"],
            "job1-w1": ["2", "3"],
        }
        assert all(r[0]["Capabilities"] == [["gpu"]] for r in requests.values())
        # Asking for every GPU the host has (or when it has none known) is a plain count.
        request = backend.device_request(0, 4)
        assert (request["Count"], request["DeviceIDs"]) == (4, [])
    finally:
        backend.close()
        dockerkit.remove_home_containers(home)
    assert dockerkit.home_containers(home) == []


def test_stop_kills_and_removes_the_containers_and_keeps_results(docker_server: Server) -> None:
    docker_server.deploy(SAMPLES / "testbench")
    job = docker_server.submit(
        "testbench", items_job(list(range(40)), workers=2, config={"sleep_s": 0.3})
    )
    job_id = job["job_id"]
    docker_server.wait_for(
        "testbench", job_id, lambda s: s["batch_metrics"]["succeeded"] >= 3, timeout=30
    )
    assert len(wait_containers(docker_server, 2)) == 2

    assert docker_server.http.delete(f"/testbench/{job_id}").status_code == 200

    deadline = time.monotonic() + 10
    while docker_server.worker_containers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert docker_server.worker_containers() == []
    status = docker_server.status("testbench", job_id)
    assert status["status"] == "status_stopped"
    done = status["batch_metrics"]["succeeded"]
    assert 3 <= done < 40
    assert len(docker_server.results("testbench", job_id)) == done


def test_a_docker_kill_under_a_memory_limit_is_a_kill_not_an_oom(
    docker_server: Server, tmp_path: Path
) -> None:
    # Exit 137 under a memory limit looks like an OOM kill; the engine's OOMKilled says not.
    predictor = (SAMPLES / "testbench" / "predictor.py").read_text()
    docker_server.deploy(make_project(tmp_path, "killed", predictor, compute={"mem": "256Mi"}))
    job = docker_server.submit(
        "killed", items_job([1], max_worker_restarts=0, config={"sleep_s": 60})
    )
    [container] = wait_containers(docker_server, 1)
    docker_server.wait_for("killed", job["job_id"], lambda s: s["worker_stats"]["running"] == 1)

    subprocess.run(["docker", "kill", container["Id"]], check=True, capture_output=True)
    status = docker_server.wait("killed", job["job_id"], timeout=30)

    assert status["status"] == "status_worker_error", status
    assert re.search(r"worker w\d+ was killed by signal 9", status["message"]), status
    assert "OOM" not in status["message"]
    [worker] = docker_server.workers("killed", job["job_id"])
    assert worker["reason"] == "crash", worker


def test_orchestrator_kill_9_and_restart_reattaches_to_running_containers(
    docker_server: Server, tmp_path: Path
) -> None:
    docker_server.deploy(SAMPLES / "testbench")
    items = list(range(24))
    marker = tmp_path / "complete.txt"
    job = docker_server.submit(
        "testbench",
        items_job(items, workers=2, config={"sleep_s": 0.3, "complete_marker": str(marker)}),
    )
    job_id = job["job_id"]
    docker_server.wait_for(
        "testbench",
        job_id,
        lambda s: s["batch_metrics"]["succeeded"] >= 4 and s["worker_stats"]["running"] == 2,
        timeout=30,
    )

    docker_server.kill()
    time.sleep(2)
    assert len(wait_containers(docker_server, 2, timeout=1)) == 2, "containers outlive it"
    docker_server.start()

    status = docker_server.wait("testbench", job_id, timeout=60)
    assert status["status"] == "status_succeeded", status
    assert status["batch_metrics"]["succeeded"] == status["batch_metrics"]["total"] == 24
    results = docker_server.results("testbench", job_id)
    assert [r["result"]["item"] for r in results] == items
    assert marker.read_text().splitlines() == [f"{job_id} 24 0 24"]
    workers = docker_server.wait_for(
        "testbench", job_id, lambda s: s["worker_stats"]["succeeded"] == 2, timeout=15
    )["worker_stats"]
    assert workers["failed"] == 0  # found again, not replaced
    assert len(docker_server.workers("testbench", job_id)) == 2
    # The logs followed the containers across the restart: every line once, none lost.
    for name in ("w0", "w1"):
        lines = (docker_server.home / "logs" / job_id / f"{name}.log").read_text().splitlines()
        assert len(lines) == len(set(lines)), f"{name}.log has duplicated lines"
        assert any("exiting: no more work" in line for line in lines), name
    batches = re.findall(r"\] batch (\d+): 1 items", docker_server.logs("testbench", job_id))
    assert sorted(map(int, batches)) == list(range(24))


def test_cli_deploy_shows_the_build_progress_and_where_its_log_is(
    docker_server: Server, tmp_path: Path
) -> None:
    project = make_project(tmp_path, "fresh", WHOAMI + f"# {uuid.uuid4().hex}\n")  # new image

    result = subprocess.run(
        [sys.executable, "-m", "cortex_tui", "--server", docker_server.url, "deploy", str(project)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), "CORTEX_TUI_HOME": str(docker_server.home)},
    )

    try:
        assert result.returncode == 0, result.stderr
        built = re.search(
            r"built image (cortex-tui-api/fresh:\w+) in [\d.]+s \(build log: (.+)\)", result.stdout
        )
        assert built, result.stdout
        assert re.search(r"building image cortex-tui-api/fresh:\w+: Step \d+/\d+", result.stderr)
        assert "Successfully tagged" in Path(built.group(2)).read_text()
    finally:
        if built := re.search(r"(cortex-tui-api/fresh:\w+)", result.stdout):
            subprocess.run(["docker", "rmi", built.group(1)], capture_output=True, check=False)


def test_cli_image_build_base_reuses_the_built_image() -> None:
    dockerkit.require_engine()
    tag = dockerkit.ensure_base_image()

    result = subprocess.run(
        [sys.executable, "-m", "cortex_tui", "image", "build-base"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )

    assert result.returncode == 0, result.stderr
    assert f"base image {tag} is already built" in result.stdout


def test_restart_removes_a_container_the_store_never_recorded(
    docker_server: Server, tmp_path: Path
) -> None:
    """A container started just before a crash, whose handle was never written, is removed."""
    docker_server.deploy(SAMPLES / "testbench")
    job = docker_server.submit("testbench", items_job(list(range(40)), config={"sleep_s": 0.5}))
    job_id = job["job_id"]
    image = wait_containers(docker_server, 1)[0]["Image"]
    docker_server.wait_for("testbench", job_id, lambda s: s["worker_stats"]["running"] == 1)
    docker_server.kill()
    client = dockerkit.client()
    try:
        orphan = client.containers.run(
            image,
            ["python3", "-c", "import time; time.sleep(120)"],
            detach=True,
            labels={
                dockerkit.HOME_LABEL: str(docker_server.home.resolve()),
                "cortex-tui.job": job_id,
                "cortex-tui.worker": f"{job_id}-w99",
            },
        )
        docker_server.start()
        deadline = time.monotonic() + 20
        while orphan.id in {c["Id"] for c in docker_server.worker_containers()}:
            assert time.monotonic() < deadline, "the unrecorded container is still there"
            time.sleep(0.2)
    finally:
        client.close()
    # The job's own worker was found again and the job goes on.
    assert docker_server.status("testbench", job_id)["status"] == "status_running"
    assert docker_server.http.delete(f"/testbench/{job_id}").status_code == 200
