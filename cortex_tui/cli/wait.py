"""``submit --wait``: follow a job with a progress line until it ends."""

from __future__ import annotations

import time
from typing import Any

from cortex_tui.cli.render import TERMINAL_STATUSES, progress_bar, short_status
from cortex_tui.cli.status_line import StatusLine
from cortex_tui.cli.timefmt import format_duration, job_duration
from cortex_tui.client import CortexClient

POLL_S = 0.5


def wait_for_job(
    client: CortexClient, api: str, job_id: str, line: StatusLine | None = None
) -> dict[str, Any]:
    """Poll the job until its status is terminal, showing progress; return its last status."""
    line = line or StatusLine()
    try:
        while True:
            status = client.job_status(api, job_id)
            if status.get("status") in TERMINAL_STATUSES:
                return status
            line.update(progress_text(status))
            time.sleep(POLL_S)
    finally:
        line.clear()


def progress_text(status: dict[str, Any]) -> str:
    """Return ``[#####.....] 12/30 batches, 0 failed, 2 workers running`` for a job status."""
    metrics = status.get("batch_metrics") or {}
    workers = status.get("worker_stats") or {}
    succeeded, failed = metrics.get("succeeded", 0), metrics.get("failed", 0)
    total = metrics.get("total", 0)
    if status.get("status") == "status_enqueuing":
        return f"enqueuing: {total} batches so far"
    running = workers.get("running", 0)
    text = (
        f"{progress_bar(succeeded + failed, total)} {succeeded + failed}/{total} batches,"
        f" {failed} failed, {running} worker{'' if running == 1 else 's'} running"
    )
    starting = workers.get("pending", 0) + workers.get("initializing", 0)
    return f"{text}, {starting} starting" if starting else text


def outcome_text(status: dict[str, Any]) -> str:
    """Return the one line that says how a finished job ended."""
    metrics = status.get("batch_metrics") or {}
    succeeded, failed = metrics.get("succeeded", 0), metrics.get("failed", 0)
    total = metrics.get("total", 0)
    took = format_duration(job_duration(status.get("start_time"), status.get("end_time"), 0.0))
    job = f"job {status['job_id']}"
    if status.get("status") == "status_succeeded":
        return f"{job} succeeded: {succeeded} of {total} batches in {took}"
    ended = short_status(status.get("status"))
    text = f"{job} ended with status {ended}: {succeeded} of {total} batches succeeded"
    text += f", {failed} failed"
    return f"{text} ({status['message']})" if status.get("message") else text
