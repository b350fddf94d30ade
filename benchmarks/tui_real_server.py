"""The TUI under load against a real orchestrator with real workers (process backend).

Load: one API with 1,000 jobs (999 ended, one running), the running job on 16 workers that
print one log line per item as fast as they can. Measured: the time one refresh takes on the
UI thread (``show``), the time the fetch takes in its worker thread (off the UI thread), the
requests one refresh makes, and for the logs view the lines per second streamed and the UI
time of each 0.1 s flush.

Run: python benchmarks/tui_real_server.py   (about a minute on two cores)
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cortex_tui.client import CortexClient  # noqa: E402
from cortex_tui.tui import CortexApp  # noqa: E402
from cortex_tui.tui.job_screen import JobScreen  # noqa: E402
from cortex_tui.tui.jobs_screen import JobsScreen  # noqa: E402
from cortex_tui.tui.logs_screen import FLUSH_BUDGET_S, FLUSH_CHUNK, LogsScreen  # noqa: E402

API = "testbench"
JOBS = 1000
WORKERS = 16
CYCLES = 20
LOG_SECONDS = 10.0


class Counting(httpx.HTTPTransport):
    """A real transport that counts the requests it sends."""

    requests = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        Counting.requests += 1
        return super().handle_request(request)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: The orchestrator's token, once it has written it (``HOME/token``).
AUTH: dict[str, str] = {}


def start_server(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(home / "server.log", "ab")  # noqa: SIM115 (lives as long as the server)
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "orchestrator", "--home", str(home), "--port", str(port)),
            *("--set", f"source_roots={home}"),  # the empty source file below lives there
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if (home / "token").exists():
            AUTH["Authorization"] = f"Bearer {(home / 'token').read_text().strip()}"
        try:
            if httpx.get(f"{url}/_cortex/health", headers=AUTH).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("the orchestrator did not start")


def load(url: str, home: Path) -> str:
    """Deploy testbench, make 999 ended jobs and one running on 16 workers; return its id."""
    with httpx.Client(base_url=url, timeout=60, headers=AUTH) as http:
        http.post("/_cortex/apis", json={"project_dir": str(ROOT / "sample_apis" / API)})
        empty = home / "empty.jsonl"
        empty.write_text("")
        body = {"workers": 1, "delimited_files": {"paths": [str(empty)], "batch_size": 1}}
        for _ in range(JOBS - 1):  # each ends at once (no batches), without a worker
            http.post(f"/{API}", json=body).raise_for_status()
        running = http.post(
            f"/{API}",
            json={
                "workers": WORKERS,
                "item_list": {"items": list(range(200_000)), "batch_size": 20},
                "config": {"print_each": True, "sleep_s": 0.1},
            },
        ).json()
        return str(running["job_id"])


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    return (
        f"median {statistics.median(ordered) * 1000:.1f} ms,"
        f" p95 {ordered[int(len(ordered) * 0.95)] * 1000:.1f} ms"
    )


async def refreshes(app: CortexApp, screen: Any) -> tuple[list[float], list[float], float]:
    shows, fetches, requests = [], [], []
    for _ in range(CYCLES):
        before = Counting.requests
        start = time.perf_counter()
        data = await asyncio.to_thread(screen.fetch, app.client)
        fetches.append(time.perf_counter() - start)
        requests.append(Counting.requests - before)
        start = time.perf_counter()
        screen.show(data)
        shows.append(time.perf_counter() - start)
        await asyncio.sleep(0.5)
    return shows, fetches, statistics.mean(requests)


async def measure(url: str, job_id: str) -> None:
    token = AUTH["Authorization"].removeprefix("Bearer ")
    client = CortexClient(url, timeout=30, transport=Counting(), token=token)
    app = CortexApp(client, refresh_s=3600)
    async with app.run_test(size=(160, 48)) as pilot:
        jobs_screen = JobsScreen(API)
        await app.push_screen(jobs_screen)
        await pilot.pause(1.0)
        shows, fetches, per = await refreshes(app, jobs_screen)
        print(f"jobs view, {len(jobs_screen.jobs)} real jobs, {CYCLES} refreshes:")
        print(f"  UI thread: {ms(shows)}; worker thread (HTTP + JSON): {ms(fetches)}")
        print(f"  requests per refresh: {per:g}")
        job_screen = JobScreen(API, job_id)
        await app.push_screen(job_screen)
        await pilot.pause(1.0)
        shows, fetches, per = await refreshes(app, job_screen)
        stats = (job_screen.job or {}).get("worker_stats")
        print(f"job view, {WORKERS} workers ({stats}), {CYCLES} refreshes:")
        print(f"  UI thread: {ms(shows)}; worker thread: {ms(fetches)}")
        print(f"  requests per refresh: {per:g}")
        logs = LogsScreen(API, job_id)
        await app.push_screen(logs)
        await pilot.pause(0.2)
        flushes: list[float] = []
        view = logs.view
        original = view.append_raw

        def timed(lines: Any) -> None:
            start = time.perf_counter()
            original(lines)
            flushes.append(time.perf_counter() - start)

        view.append_raw = timed  # type: ignore[method-assign]
        first = len(view.lines)
        start = time.monotonic()
        await pilot.pause(LOG_SECONDS)
        rate = (len(view.lines) - first) / (time.monotonic() - start)
        print(f"logs view, followed for {LOG_SECONDS:g}s:")
        print(
            f"  {rate:,.0f} lines/s shown, {len(view.lines):,} lines kept; UI thread per"
            f" chunk of up to {FLUSH_CHUNK} lines: {ms(flushes)} ({len(flushes)} chunks;"
            f" one 0.1 s flush adds chunks for at most {FLUSH_BUDGET_S * 1000:.0f} ms)"
        )
    client.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        proc, url = start_server(home)
        try:
            started = time.monotonic()
            job_id = load(url, home)
            print(f"load: {JOBS} jobs on {API} in {time.monotonic() - started:.0f}s")
            asyncio.run(measure(url, job_id))
            httpx.delete(f"{url}/{API}/{job_id}", timeout=60, headers=AUTH)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


if __name__ == "__main__":
    main()
