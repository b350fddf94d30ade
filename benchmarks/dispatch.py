"""Dispatch throughput of the process backend: no-op batches through the real orchestrator.

Usage: python benchmarks/dispatch.py [--batches 2000] [--workers 1 2 4]

Starts an orchestrator on a free loopback port with a temporary home, deploys
sample_apis/testbench (sleep 0, echo off), and for each worker count submits
``--batches`` batches of one item, timing submit -> status_succeeded as a user
sees it (polling every 50 ms). Prints one line per run and a key=value summary.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(home: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "--home", str(home), "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(f"{url}/_cortex/health").status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("orchestrator did not start")


def run_job(http: httpx.Client, batches: int, workers: int) -> float:
    body = {
        "workers": workers,
        "item_list": {"items": list(range(batches)), "batch_size": 1},
        "config": {"echo": False},
    }
    started = time.perf_counter()
    job_id = http.post("/testbench", json=body).json()["job_id"]
    while True:
        status = http.get(f"/testbench/{job_id}").json()["job_status"]
        if status["status"] != "status_running" and status["status"] != "status_enqueuing":
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    if status["status"] != "status_succeeded":
        raise SystemExit(f"job ended {status['status']}: {status.get('message')}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        proc = start_server(Path(tmp), port)
        try:
            http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
            http.post("/_cortex/apis", json={"project_dir": str(ROOT / "sample_apis/testbench")})
            summary = []
            print(f"machine: {os.cpu_count()} cores; {args.batches} no-op batches of 1 item")
            for workers in args.workers:
                elapsed = run_job(http, args.batches, workers)
                rate = args.batches / elapsed
                print(f"workers={workers}: {elapsed:.2f}s submit->succeeded, {rate:.0f} batches/s")
                summary.append(f"dispatch_bps_{workers}w={rate:.0f}")
            print(" ".join(summary))
        finally:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
