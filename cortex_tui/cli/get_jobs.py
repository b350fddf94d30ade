"""The ``cortex-tui get API`` view: the API's jobs, newest first, and its endpoint."""

from __future__ import annotations

from typing import Any

from cortex_tui.cli.render import Paint, format_table, paint_status, progress, short_status
from cortex_tui.cli.timefmt import format_duration, job_duration, local_time

HEADERS = ("job id", "status", "progress", "failed", "start time", "duration")


def render(document: dict[str, Any], now: float, color: bool) -> str:
    """Return the jobs of ``GET /<api>`` as a table followed by the API's endpoint.

    Args:
        document: The server's ``{"api_name", "endpoint", "jobs": [...]}`` (with
            ``deleted_time`` for a deleted API: then that is said instead of the endpoint).
        now: The current epoch time, for the duration of running jobs.
        color: Whether to color statuses.
    """
    jobs = document.get("jobs") or []
    endpoint = f"endpoint: {document.get('endpoint', '-')}"
    if deleted := document.get("deleted_time"):
        endpoint = (
            f"deleted at {local_time(deleted)}: its jobs stay readable until"
            f" `cortex-tui prune` (deploy it again to submit jobs)"
        )
    if not jobs:
        return f"no submitted jobs\n\n{endpoint}"
    rows: list[list[str]] = []
    paint: list[list[Paint | None]] = []
    for job in jobs:
        metrics = job.get("batch_metrics") or {}
        start = job.get("start_time") or job.get("created_time")
        rows.append(
            [
                job["job_id"],
                short_status(job.get("status")),
                progress(metrics, show_failed=False),  # the next column says it
                str(metrics.get("failed", 0)),
                local_time(start),
                format_duration(job_duration(start, job.get("end_time"), now)),
            ]
        )
        paint.append([None, paint_status(job.get("status"), color), None, None, None, None])
    return f"{format_table(HEADERS, rows, paint)}\n\n{endpoint}"
