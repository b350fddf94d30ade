"""Recorded orchestrator responses, served by a stub transport, for TUI snapshots and
fast in-process Pilot tests of layout and keys.

Behaviour against a real orchestrator is tested with the real server; snapshots need fixed
ids, times and counts.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widget import Widget

from cortex_tui.client import CortexClient
from cortex_tui.tui import CortexApp

NOW = datetime(2026, 11, 27, 10, 5, 0, tzinfo=UTC).timestamp()
API = "testbench"
RUNNING = "1a21c6f0aa000003"
FAILED = "1a21c6f0aa000002"
DONE = "1a21c6f0aa000001"
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "runtime/worker.py", line 98, in _run_batch\n'
    "    result = call_by_name(\n"
    '  File "predictor.py", line 61, in predict\n'
    '    raise ValueError(f"item {bad!r} is in fail_items")\n'
    "ValueError: item 3 is in fail_items\n"
)


def job(job_id: str, status: str, succeeded: int, failed: int, total: int, **extra: Any) -> Any:
    document: dict[str, Any] = {
        "job_id": job_id,
        "api_name": API,
        "workers": 4,
        "batches_per_worker": total // 4,
        "config": {"sleep_s": 0.5, "fail_items": [3]},
        "api_id": "cb1fb4b908403888",
        "created_time": "2026-11-27T10:00:00.000000Z",
        "backend": "process",
        "status": status,
        "message": None,
        "batches_in_queue": 0,
        "batches_in_flight": 0,
        "batch_metrics": {
            "succeeded": succeeded,
            "failed": failed,
            "total": total,
            "avg_time_per_batch": 0.512,
        },
        "worker_stats": {
            "pending": 0,
            "initializing": 0,
            "running": 0,
            "succeeded": 4,
            "failed": 0,
            "stalled": 0,
        },
        "start_time": "2026-11-27T10:00:00.000000Z",
        "batch_size": 10,
        "items_enqueued": total * 10,
        "source": {"kind": "item_list", "batch_size": 10, "items": total * 10},
        "timeout": None,
        "retries": 1,
        "max_worker_restarts": 2,
        "end_time": "2026-11-27T10:03:20.000000Z",
    }
    document.update(extra)
    return document


def running_job(succeeded: int = 120) -> Any:
    return job(
        RUNNING,
        "status_running",
        succeeded,
        3,
        400,
        batches_in_queue=400 - succeeded - 3 - 4,
        batches_in_flight=4,
        worker_stats={
            "pending": 0,
            "initializing": 0,
            "running": 4,
            "succeeded": 0,
            "failed": 0,
            "stalled": 0,
        },
        start_time="2026-11-27T10:02:00.000000Z",
        created_time="2026-11-27T10:02:00.000000Z",
        end_time=None,
    )


JOBS = [
    running_job(),
    job(
        FAILED,
        "status_completed_with_failures",
        38,
        2,
        40,
        message="2 of 40 batches failed after their retries (see the failed-batch ledger)",
    ),
    job(DONE, "status_succeeded", 40, 0, 40),
]
APIS = {
    "apis": [
        {
            "name": API,
            "api_id": "cb1fb4b908403888",
            "backend": "process",
            "project_dir": "/home/me/testbench",
            "endpoint": f"http://127.0.0.1:7311/{API}",
            "running_jobs": 1,
            "latest_job": running_job(),
            "created_time": "2026-11-27T09:00:00.000000Z",
            "updated_time": "2026-11-27T09:58:00.000000Z",
        },
        {
            "name": "iris-classifier",
            "api_id": "77aa01bb02cc03dd",
            "backend": "process",
            "project_dir": "/home/me/iris",
            "endpoint": "http://127.0.0.1:7311/iris-classifier",
            "running_jobs": 0,
            "latest_job": None,
            "created_time": "2026-11-27T08:00:00.000000Z",
            "updated_time": "2026-11-27T08:00:00.000000Z",
        },
    ]
}
FAILED_BATCHES = [
    {
        "batch_id": 2,
        "batch_index": 0,
        "first_item": 0,
        "size": 10,
        "payload": list(range(10)),
        "attempts": 2,
        "errors": 2,
        "worker": "w1",
        "error": "ValueError: item 3 is in fail_items",
        "traceback": TRACEBACK,
        "failed_time": "2026-11-27T10:02:03.500000Z",
    }
]


def log_text() -> str:
    lines = [
        "2026-11-27T10:02:00.010000Z [orchestrator] job submitted",
        "2026-11-27T10:02:00.020000Z [orchestrator] job status_running",
    ]
    for n in range(4):
        lines.append(f"2026-11-27T10:02:00.{300 + n}000Z [w{n}] predictor ready in 0.00s")
    for batch in range(40):
        worker = batch % 4
        lines.append(
            f"2026-11-27T10:02:{1 + batch // 4:02d}.{batch % 4}00000Z [w{worker}]"
            f" [batch {batch}] batch {batch}: 10 items"
        )
        if batch == 0:
            lines.append(
                "2026-11-27T10:02:01.500000Z [w0] [batch 0] predict raised ValueError:"
                " item 3 is in fail_items (attempt 1)"
            )
    return "\n".join(lines) + "\n"


def results_text(count: int) -> str:
    """Return ``count`` results as the results route streams them (10 items a batch)."""
    return "".join(
        json.dumps({"item_index": n, "batch_index": n // 10, "result": {"label": n % 3}}) + "\n"
        for n in range(count)
    )


#: What the API holds (what its delete dialog says goes with it).
USAGE = {
    "api_name": API,
    "deleted_time": None,
    "jobs": 3,
    "running_jobs": 1,
    "data_bytes": 1_200_000,
    "log_bytes": 40_000,
    "snapshot_bytes": 14_000,
}


class Recorded:
    """The documents one stub transport answers with; a test may change them as it runs."""

    def __init__(self) -> None:
        self.apis: Any = copy.deepcopy(APIS)
        self.jobs: Any = copy.deepcopy(JOBS)
        self.results = 250
        self.workers: list[Any] = []  # the workers route's (their GPUs show in the job view)
        self.requests: list[httpx.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        """Answer one request like an orchestrator would."""
        self.requests.append(request)
        path = request.url.path
        if path == "/_cortex/apis":
            return httpx.Response(200, json=self.apis)
        if path == f"/{API}":
            return httpx.Response(
                200,
                json={
                    "api_name": API,
                    "endpoint": f"http://127.0.0.1:7311/{API}",
                    "jobs": self.jobs,
                },
            )
        if path.startswith(f"/{API}/"):
            job_id = path.rsplit("/", 1)[-1]
            found = next(j for j in self.jobs if j["job_id"] == job_id)
            return httpx.Response(200, json={"job_status": copy.deepcopy(found)})
        if path == f"/_cortex/apis/{API}/usage":
            return httpx.Response(200, json=USAGE)
        if path.endswith("/failed"):
            return httpx.Response(200, json={"job_id": RUNNING, "failed_batches": FAILED_BATCHES})
        if path.endswith("/workers"):
            return httpx.Response(200, json={"workers": self.workers})
        if path.endswith("/logs"):
            return httpx.Response(200, text=log_text())
        if path.endswith("/results"):
            return httpx.Response(200, text=results_text(self.results))
        return httpx.Response(404, json={"error": f"no route {path}"})


def transport(recorded: Recorded | None = None) -> httpx.MockTransport:
    """Return a transport answering like an orchestrator with the recorded documents."""
    return httpx.MockTransport((recorded or Recorded()).handler)


class Ticks:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def stub_app(
    ticks: Ticks | None = None, recorded: Recorded | None = None, **options: Any
) -> CortexApp:
    """Return the app over a stub transport, with a fixed clock and no polling of its own."""
    stub = transport(recorded)
    client = CortexClient("http://127.0.0.1:7311", transport=stub, async_transport=stub)
    return CortexApp(
        client, refresh_s=3600, clock=lambda: NOW, monotonic=ticks or Ticks(), **options
    )


async def until(pilot: Pilot[None], condition: Callable[[], bool], timeout: float = 20) -> None:
    """Let the app run until ``condition()`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"not true after {timeout}s: screen {pilot.app.screen!r}")
        await pilot.pause(0.05)


def shown(widget: Widget) -> str:
    """Return the text a widget shows on screen."""
    region = Region(0, 0, widget.size.width, widget.size.height)
    return "\n".join(strip.text for strip in widget.render_lines(region))
