"""Docker backend vs process backend: cold start, image builds, per-batch overhead.

Usage: python benchmarks/docker_backend.py [--runs 3] [--batches 200]

Needs the Docker engine and the offline base image (``cortex-tui image build-base``).
Starts one orchestrator per backend (temporary home, free loopback port) and measures:

- image build, cold: deploying a project whose content is new to the engine (the base
  image and the shared layers are cached, as they are after the first deploy);
- image build, cached: deploying the same project again (hash, look-up, no build);
- cold start: submit -> first batch done, for a one-item job on one new worker;
- per-batch overhead: a job of ``--batches`` no-op batches on one worker, timed from its
  first batch done to its last, divided by the batches.

Prints one line per measurement and a key=value summary (medians).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
TESTBENCH = ROOT / "sample_apis" / "testbench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(home: Path, backend: str) -> tuple[subprocess.Popen[bytes], httpx.Client]:
    port = free_port()
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "orchestrator", "--home", str(home), "--port", str(port)),
            *("--backend", backend, "--set", "tick_s=0.05"),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600)
    for _ in range(200):
        if (home / "token").exists():  # every request sends the orchestrator's token
            http.headers["Authorization"] = f"Bearer {(home / 'token').read_text().strip()}"
        try:
            if http.get("/_cortex/health").status_code == 200:
                return proc, http
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("orchestrator did not start")


def deploy(http: httpx.Client, project: Path) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    response = http.post("/_cortex/apis", json={"project_dir": str(project)})
    response.raise_for_status()
    return time.perf_counter() - started, response.json()["apis"][0]


def first_and_last(http: httpx.Client, batches: int) -> tuple[float, float, float]:
    """Submit a job; return (submit->first batch done, first->last batch done, total)."""
    body = {
        "workers": 1,
        "item_list": {"items": list(range(batches)), "batch_size": 1},
        "config": {"echo": False},
    }
    started = time.perf_counter()
    job_id = http.post("/testbench", json=body).json()["job_id"]
    first = None
    while True:
        status = http.get(f"/testbench/{job_id}").json()["job_status"]
        done = status["batch_metrics"]["succeeded"]
        now = time.perf_counter()
        if first is None and done >= 1:
            first = now
        if status["status"] == "status_succeeded":
            assert first is not None
            result = first - started, now - first, now - started
            while status["worker_stats"]["succeeded"] < 1:  # its container is reaped
                time.sleep(0.05)
                status = http.get(f"/testbench/{job_id}").json()["job_status"]
            return result
        if status["status"] not in ("status_enqueuing", "status_running"):
            raise SystemExit(f"job ended {status['status']}: {status.get('message')}")
        time.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batches", type=int, default=200)
    args = parser.parse_args()
    summary: dict[str, float] = {}
    built: list[str] = []  # the benchmark's own images, removed at the end
    with tempfile.TemporaryDirectory(prefix="cortex-bench-") as tmp:
        for backend in ("process", "docker"):
            proc, http = start_server(Path(tmp) / backend, backend)
            try:
                if backend == "docker":
                    cold, cached = [], []
                    for run in range(args.runs):
                        project = Path(tmp) / f"project-{run}"
                        shutil.copytree(TESTBENCH, project)
                        with open(project / "predictor.py", "a") as f:
                            f.write(f"# benchmark {uuid.uuid4().hex}\n")  # new content
                        seconds, api = deploy(http, project)
                        assert api["image_built"], api
                        built.append(api["image"])
                        cold.append(seconds)
                        seconds, api = deploy(http, project)
                        assert not api["image_built"], api
                        cached.append(seconds)
                        print(f"docker  image build: cold {cold[-1]:.2f}s cached {cached[-1]:.3f}s")
                    summary["image_build_cold_s"] = statistics.median(cold)
                    summary["image_build_cached_s"] = statistics.median(cached)
                deploy(http, TESTBENCH)
                starts, per_batch = [], []
                for _ in range(args.runs):
                    start, rest, total = first_and_last(http, args.batches)
                    starts.append(start)
                    per_batch.append(rest / (args.batches - 1))
                    print(
                        f"{backend:7} cold start {start:.2f}s; {args.batches} batches in"
                        f" {total:.2f}s ({per_batch[-1] * 1000:.1f} ms/batch after the first)"
                    )
                summary[f"{backend}_cold_start_s"] = statistics.median(starts)
                summary[f"{backend}_per_batch_ms"] = statistics.median(per_batch) * 1000
            finally:
                http.close()
                proc.terminate()
                proc.wait(10)
    if built:
        subprocess.run(["docker", "rmi", *built], capture_output=True, check=False)
    print(" ".join(f"{key}={value:.3f}" for key, value in summary.items()))


if __name__ == "__main__":
    main()
