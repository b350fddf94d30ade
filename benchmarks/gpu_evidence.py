"""GPU evidence: run sample_apis/torch-gpu (compute.gpu: 1) through the process backend,
then a job that keeps its GPU busy, to see the workers' GPU telemetry.

Usage (on a machine with an NVIDIA GPU and torch): python benchmarks/gpu_evidence.py

Starts an orchestrator (temporary home, free loopback port, process backend, 1 s
heartbeats), deploys the sample, submits its sample.json, waits for the job, and prints
its status, the worker log lines that name the device (``device: cuda (NVIDIA …)``) and
the devices in the results. Then it deploys a predictor that holds 1 GiB on its GPU and
multiplies matrices for 3 s a batch, and while that job runs reads the workers route
(``gpus``: the samples each worker's heartbeat carried, from NVML or nvidia-smi) and the
``cortex_tui_worker_gpu_*`` lines of ``/_cortex/metrics``, and prints what it saw.
Exits 1 unless the first job succeeded on CUDA and the second showed a sample of at least
512 MiB in use on a device.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_apis" / "torch-gpu"
Json = dict[str, Any]
BUSY = textwrap.dedent(
    """
    import time

    import torch


    class PythonPredictor:
        def __init__(self, config):
            self.held = torch.empty(1 << 28, dtype=torch.float32, device="cuda")  # 1 GiB
            self.a = torch.rand(4096, 4096, device="cuda")

        def predict(self, payload, batch_id):
            until = time.monotonic() + 3
            while time.monotonic() < until:
                self.a = (self.a @ self.a).clamp_(-1, 1)
            torch.cuda.synchronize()
            return payload
    """
)
BUSY_YAML = (
    "- name: gpu-busy\n  kind: BatchAPI\n  predictor: {type: python, path: predictor.py}\n"
    "  compute: {gpu: 1}\n"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="cortex-gpu-") as home:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "--home", home, "--port", str(port),
             "--set", "heartbeat_interval_s=1"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
        try:
            wait_for_server(http, Path(home))
            on_cuda = torch_sample_job(http)
            sampled = telemetry_job(http, Path(home))
            print(f"gpu_evidence_on_cuda={int(on_cuda)} gpu_evidence_telemetry={int(sampled)}")
            return 0 if on_cuda and sampled else 1
        finally:
            http.close()
            proc.terminate()
            proc.wait(10)


def wait_for_server(http: httpx.Client, home: Path) -> None:
    for _ in range(200):
        token = home / "token"
        if token.exists():  # every request sends the orchestrator's token
            http.headers["Authorization"] = f"Bearer {token.read_text().strip()}"
        try:
            if http.get("/_cortex/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)


def wait_for_job(http: httpx.Client, api: str, job_id: str, each: Any = None) -> Json:
    """Poll the job until it ends (5 minutes at most), calling ``each()`` at every poll."""
    deadline = time.monotonic() + 300
    while True:
        status: Json = http.get(f"/{api}/{job_id}").json()["job_status"]
        if status["status"] not in ("status_enqueuing", "status_running"):
            return status
        if time.monotonic() > deadline:
            return status
        if each is not None:
            each()
        time.sleep(0.5)


def torch_sample_job(http: httpx.Client) -> bool:
    """Run the torch-gpu sample; return whether it succeeded on CUDA."""
    print(http.post("/_cortex/apis", json={"project_dir": str(SAMPLE)}).json())
    items = json.loads((SAMPLE / "sample.json").read_text())
    body = {"workers": 1, "item_list": {"items": items, "batch_size": 4}}
    job = http.post("/torch-gpu", json=body).json()
    print("submitted", job)
    status = wait_for_job(http, "torch-gpu", job["job_id"])
    print("status:", status["status"], status.get("message") or "")
    logs = http.get(f"/_cortex/apis/torch-gpu/jobs/{job['job_id']}/logs").text
    device_lines = [line for line in logs.splitlines() if "device:" in line]
    print("\n".join(device_lines))
    results = http.get(f"/_cortex/apis/torch-gpu/jobs/{job['job_id']}/results").text
    devices = {json.loads(line)["result"]["device"] for line in results.splitlines()}
    print("result devices:", sorted(devices))
    on_cuda = any("device: cuda" in line for line in device_lines)
    return status["status"] == "status_succeeded" and on_cuda


def telemetry_job(http: httpx.Client, home: Path) -> bool:
    """Run a job that keeps its GPU busy; print the GPU samples seen while it ran."""
    project = home / "gpu-busy"
    project.mkdir()
    (project / "predictor.py").write_text(BUSY)
    (project / "cortex.yaml").write_text(BUSY_YAML)
    print(http.post("/_cortex/apis", json={"project_dir": str(project)}).json())
    body = {"workers": 1, "item_list": {"items": list(range(5)), "batch_size": 1}}
    job_id = http.post("/gpu-busy", json=body).json()["job_id"]
    seen: list[Json] = []
    gauges: list[str] = []

    def look() -> None:
        workers = http.get(f"/_cortex/apis/gpu-busy/jobs/{job_id}/workers").json()["workers"]
        for worker in workers:
            for sample in worker.get("gpus") or []:
                seen.append({"worker": worker["worker"], "at": worker["gpus_time"], **sample})
        metrics = http.get("/_cortex/metrics").text
        gauges[:] = [line for line in metrics.splitlines() if "_worker_gpu_" in line] or gauges

    status = wait_for_job(http, "gpu-busy", job_id, look)
    print("status:", status["status"], status.get("message") or "")
    unique = list({json.dumps(s, sort_keys=True): s for s in seen}.values())
    print(f"{len(unique)} distinct GPU samples from the workers route:")
    for sample in unique:
        print("  ", json.dumps(sample))
    print("the metrics' GPU lines while it ran:")
    print("\n".join(f"   {line}" for line in gauges if not line.startswith("#")) or "   none")
    busy = [s for s in unique if (s.get("memory_used_bytes") or 0) >= 512 << 20]
    return status["status"] == "status_succeeded" and bool(busy)


if __name__ == "__main__":
    sys.exit(main())
