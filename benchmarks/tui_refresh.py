"""How long one refresh of the TUI takes on the UI thread, under load.

Load: one API with 1,000 jobs (20 of them running and moving), a job with 16 workers, and a
log stream of 20,000 lines per second. Server documents have the real endpoints' shapes and
are answered in-process by a counting transport, so the figures are the UI's own cost (the
HTTP round trip happens in a worker thread, off the UI thread) and requests are counted
exactly.

Run: python benchmarks/tui_refresh.py
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cortex_tui.client import CortexClient
from cortex_tui.tui import CortexApp
from cortex_tui.tui.job_screen import JobScreen
from cortex_tui.tui.jobs_screen import JobsScreen
from cortex_tui.tui.log_view import LogView

API = "load"
JOBS = 1000
RUNNING = 20
WORKERS = 16
CYCLES = int(__import__("os").environ.get("CYCLES", 40))
LOG_LINES_PER_S = 20_000
FLUSH_S = 0.1


def job(index: int, cycle: int) -> dict[str, Any]:
    running = index < RUNNING
    succeeded = min(500, cycle * 7 + index) if running else 500
    return {
        "job_id": f"{JOBS - index:016x}",
        "api_name": API,
        "workers": WORKERS,
        "batches_per_worker": 32,
        "config": {"sleep_s": 0.1},
        "status": "status_running" if running else "status_succeeded",
        "message": None,
        "batches_in_queue": 500 - succeeded,
        "batches_in_flight": WORKERS if running else 0,
        "batch_metrics": {
            "succeeded": succeeded,
            "failed": 0,
            "total": 500,
            "avg_time_per_batch": 0.1,
        },
        "worker_stats": {
            "pending": 0,
            "initializing": 0,
            "running": WORKERS if running else 0,
            "succeeded": 0 if running else WORKERS,
            "failed": 0,
            "stalled": 0,
        },
        "created_time": "2026-11-27T10:00:00.000000Z",
        "start_time": "2026-11-27T10:00:00.000000Z",
        "end_time": None if running else "2026-11-27T10:05:00.000000Z",
        "batch_size": 10,
        "source": {"kind": "item_list", "batch_size": 10, "items": 5000},
        "timeout": None,
        "retries": 0,
        "max_worker_restarts": 2,
    }


class Server:
    """Answers like an orchestrator whose jobs move on each cycle, counting requests."""

    def __init__(self) -> None:
        self.cycle = 0
        self.requests = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        path = request.url.path
        if path == f"/{API}":
            jobs = [job(i, self.cycle) for i in range(JOBS)]
            return httpx.Response(200, json={"api_name": API, "endpoint": "", "jobs": jobs})
        if path.startswith(f"/{API}/"):
            return httpx.Response(200, json={"job_status": job(0, self.cycle)})
        if path.endswith("/failed"):
            return httpx.Response(200, json={"failed_batches": []})
        return httpx.Response(200, json={"apis": []})


async def refresh_cycles(app: CortexApp, server: Server, screen: Any) -> tuple[list[float], float]:
    """Return the UI-thread time of each refresh and the requests one refresh makes."""
    timings = []
    requests = []
    for _ in range(CYCLES):
        server.cycle += 1
        before = server.requests
        data = await asyncio.to_thread(screen.fetch, app.client)  # the worker thread's part
        requests.append(server.requests - before)
        start = time.perf_counter()
        screen.show(data)  # the UI thread's part
        await asyncio.sleep(0)
        timings.append(time.perf_counter() - start)
    return timings, statistics.mean(requests)


def log_burst(start: int, count: int) -> list[str]:
    return [
        f"2026-11-27T10:00:{(start + n) // 1000 % 60:02d}.{(start + n) % 1000:03d}000Z"
        f" [w{(start + n) % WORKERS}] [batch {start + n}] batch {start + n}: 10 items done"
        for n in range(count)
    ]


async def log_appends(view: LogView, per_flush: int) -> tuple[list[float], float]:
    """Time each append of a burst of log lines, then a search over all of them."""
    flush_times = []
    for n in range(CYCLES):
        lines = log_burst(n * per_flush, per_flush)
        start = time.perf_counter()
        view.append_raw(lines)
        await asyncio.sleep(0)
        flush_times.append(time.perf_counter() - start)
    start = time.perf_counter()
    view.pattern = "batch 77"  # search across the whole log
    return flush_times, time.perf_counter() - start


async def main() -> None:
    server = Server()
    transport = httpx.MockTransport(server.handle)
    client = CortexClient("http://bench", transport=transport, async_transport=transport)
    app = CortexApp(client, refresh_s=3600)
    async with app.run_test(size=(160, 48)) as pilot:
        jobs_screen = JobsScreen(API)
        await app.push_screen(jobs_screen)
        await pilot.pause(0.5)
        jobs_times, jobs_requests = await refresh_cycles(app, server, jobs_screen)
        job_screen = JobScreen(API, f"{JOBS:016x}")
        await app.push_screen(job_screen)
        await pilot.pause(0.5)
        job_times, job_requests = await refresh_cycles(app, server, job_screen)
        app.pop_screen()
        app.pop_screen()
        view = LogView()
        await app.screen.mount(view)
        per_flush = int(LOG_LINES_PER_S * FLUSH_S)
        flush_times, search_s = await log_appends(view, per_flush)
    client.close()
    payload = len(json.dumps([job(i, 0) for i in range(JOBS)]))

    def ms(values: list[float]) -> str:
        return (
            f"median {statistics.median(values) * 1000:.1f} ms,"
            f" p95 {sorted(values)[int(len(values) * 0.95)] * 1000:.1f} ms"
        )

    print(f"jobs view, {JOBS} jobs ({RUNNING} running), {CYCLES} refreshes:")
    print(
        f"  UI thread per refresh: {ms(jobs_times)}; requests per refresh: {jobs_requests:g}"
        f" (one GET /{API}, {payload / 1e6:.1f} MB)"
    )
    print(f"job view, {WORKERS} workers, {CYCLES} refreshes:")
    print(f"  UI thread per refresh: {ms(job_times)}; requests per refresh: {job_requests:g}")
    print(f"logs view, {LOG_LINES_PER_S} lines/s in flushes of {per_flush} lines every {FLUSH_S}s:")
    print(
        f"  UI thread per append of {per_flush} lines: {ms(flush_times)};"
        f" {len(view.lines)} lines kept;"
        f" search over all of them: {search_s * 1000:.0f} ms"
    )


if __name__ == "__main__":
    asyncio.run(main())
