"""The ``cortex-tui get`` view: one row per deployed API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cortex_tui.cli.render import Paint, format_table, paint_status, progress, short_status
from cortex_tui.cli.timefmt import last_update

HEADERS = (
    "name",
    "backend",
    "running jobs",
    "latest job id",
    "latest job status",
    "progress",
    "last update",
)


def render(document: dict[str, Any], now: float, color: bool, suggest: Callable[..., str]) -> str:
    """Return the APIs of ``GET /_cortex/apis`` as a table.

    Args:
        document: The server's ``{"apis": [...]}``.
        now: The current epoch time, for ages.
        color: Whether to color statuses.
        suggest: Builds a ``cortex-tui ...`` command line to suggest.
    """
    apis = document.get("apis") or []
    if not apis:
        return f"no apis are deployed (deploy one with: {suggest('deploy', 'DIR')})"
    rows: list[list[str]] = []
    paint: list[list[Paint | None]] = []
    for api in apis:
        job = api.get("latest_job") or {}
        metrics = job.get("batch_metrics") or {}
        status = job.get("status")
        rows.append(
            [
                api["name"],
                api.get("backend") or "-",
                str(api.get("running_jobs", 0)),
                job.get("job_id") or "-",
                short_status(status),
                progress(metrics) if job else "-",
                last_update(api, now),
            ]
        )
        paint.append(
            [None, None, None, None, paint_status(status, color) if job else None, None, None]
        )
    return format_table(HEADERS, rows, paint)
