"""GPU evidence: run sample_apis/torch-gpu (compute.gpu: 1) through the process backend.

Usage (on a machine with an NVIDIA GPU and torch): python benchmarks/gpu_evidence.py

Starts an orchestrator (temporary home, free loopback port, process backend), deploys the
sample, submits its sample.json, waits for the job, and prints its status, the worker log
lines that name the device (``device: cuda (NVIDIA …)``) and the devices in the results.
Exits 1 unless the job succeeded on CUDA.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_apis" / "torch-gpu"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="cortex-gpu-") as home:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "--home", home, "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
        try:
            for _ in range(200):
                token = Path(home) / "token"
                if token.exists():  # every request sends the orchestrator's token
                    http.headers["Authorization"] = f"Bearer {token.read_text().strip()}"
                try:
                    if http.get("/_cortex/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            print(http.post("/_cortex/apis", json={"project_dir": str(SAMPLE)}).json())
            items = json.loads((SAMPLE / "sample.json").read_text())
            body = {"workers": 1, "item_list": {"items": items, "batch_size": 4}}
            job = http.post("/torch-gpu", json=body).json()
            print("submitted", job)
            deadline = time.monotonic() + 300
            while True:
                status = http.get(f"/torch-gpu/{job['job_id']}").json()["job_status"]
                if status["status"] not in ("status_enqueuing", "status_running"):
                    break
                if time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            print("status:", status["status"], status.get("message") or "")
            logs = http.get(f"/_cortex/apis/torch-gpu/jobs/{job['job_id']}/logs").text
            device_lines = [line for line in logs.splitlines() if "device:" in line]
            print("\n".join(device_lines))
            results = http.get(f"/_cortex/apis/torch-gpu/jobs/{job['job_id']}/results").text
            devices = {json.loads(line)["result"]["device"] for line in results.splitlines()}
            print("result devices:", sorted(devices))
            on_cuda = any("device: cuda" in line for line in device_lines)
            return 0 if status["status"] == "status_succeeded" and on_cuda else 1
        finally:
            http.close()
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    sys.exit(main())
