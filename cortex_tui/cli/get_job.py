"""The ``cortex-tui get API JOB_ID`` view: a job's status, stats, workers and config."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

from cortex_tui.cli.render import (
    colored,
    format_pairs,
    format_table,
    short_status,
    status_color,
)
from cortex_tui.cli.timefmt import format_duration, format_seconds, job_duration, local_time
from cortex_tui.job_status import ENDED_WORKER_STATES

BATCH_HEADERS = ("in queue", "in flight", "succeeded", "failed", "total", "avg time per batch")
WORKER_STATS = ("pending", "initializing", "running", "succeeded", "failed", "stalled")
_CONFIG_KEYS = (
    "workers",
    "batch_size",
    "source",
    "timeout",
    "retries",
    "max_worker_restarts",
    "backend",
    "config",
)


def render(
    document: dict[str, Any],
    workers: dict[str, Any],
    now: float,
    color: bool,
    suggest: Callable[..., str],
) -> str:
    """Return a job's ``GET /<api>/<job_id>`` response for people.

    Args:
        document: The server's ``{"job_status": {...}}``.
        workers: The server's ``{"workers": [...]}`` for the job.
        now: The current epoch time, for the duration of a running job.
        color: Whether to color the status.
        suggest: Builds a ``cortex-tui ...`` command line to suggest.
    """
    job = document["job_status"]
    sections = [
        _header(job, now, color),
        "batch stats\n" + _batch_stats(job),
        "worker stats\n"
        + format_table(
            WORKER_STATS, [[str((job.get("worker_stats") or {}).get(k, 0)) for k in WORKER_STATS]]
        ),
    ]
    if workers.get("workers"):
        sections.append("workers\n" + _workers(workers["workers"]))
    sections.append("job config\n" + _config(job).rstrip("\n"))
    sections.append("\n".join(_hints(job, suggest)))
    return "\n\n".join(sections)


def _hints(job: dict[str, Any], suggest: Callable[..., str]) -> list[str]:
    """Return the commands that show more of the job (and retry its failures, once ended)."""
    api, job_id = job["api_name"], job["job_id"]
    hints = []
    if (job.get("batch_metrics") or {}).get("failed"):
        hints.append(f"failed batches: {suggest('failed', api, job_id)}")
        if job.get("end_time"):
            hints.append(f"retry them: {suggest('retry', api, job_id)}")
    hints.append(f"results: {suggest('results', api, job_id)}")
    if parent := job.get("parent_job_id"):
        merged = suggest("results", api, parent, "--merge-retries")
        hints.append(f"with the retried job's: {merged}")
    hints.append(f"logs: {suggest('logs', api, job_id)}")
    return hints


def render_watch(
    document: dict[str, Any],
    workers: dict[str, Any],
    now: float,
    color: bool,
    suggest: Callable[..., str],
    lines: int,
) -> str:
    """Return the same view cut to ``lines`` lines for ``--watch``: status, times, batch and
    worker stats first, then as many workers as fit (live ones first), then the logs hint;
    the job's config, which does not change, is left out."""
    job = document["job_status"]
    status = colored(short_status(job.get("status")), status_color(job.get("status")), color)
    if job.get("message"):
        status += f" ({job['message']})"
    start, end = job.get("start_time"), job.get("end_time")
    head = [
        f"job {job['job_id']}   {status}",
        f"created {local_time(job.get('created_time'))}   ended {local_time(end)}   duration"
        f" {format_duration(job_duration(start, end, now))}",
        "",
        _batch_stats(job),
        "",
        format_table(
            WORKER_STATS, [[str((job.get("worker_stats") or {}).get(k, 0)) for k in WORKER_STATS]]
        ),
    ]
    tail = ["", f"logs: {suggest('logs', job['api_name'], job['job_id'])}"]
    room = lines - len("\n".join(head).splitlines()) - len(tail) - 2  # a blank, the headers
    return "\n".join([*head, *_some_workers(workers.get("workers") or [], room), *tail])


def _some_workers(workers: list[dict[str, Any]], room: int) -> list[str]:
    """Return the workers table in at most ``room`` rows (live workers first), or nothing."""
    if not workers or room < 1:
        return []
    ordered = sorted(workers, key=lambda w: w.get("state") in ENDED_WORKER_STATES)
    shown = ordered if len(ordered) <= room else ordered[: room - 1]
    table = ["", *_workers(shown).splitlines()]
    if len(shown) < len(ordered):
        table.append(f"... and {len(ordered) - len(shown)} more (without --watch: all of them)")
    return table


def _header(job: dict[str, Any], now: float, color: bool) -> str:
    status = colored(short_status(job.get("status")), status_color(job.get("status")), color)
    if job.get("message"):
        status += f" ({job['message']})"
    start = job.get("start_time")
    pairs = [("job id", job["job_id"]), ("status", status)]
    if job.get("parent_job_id"):
        pairs.append(("retry of", job["parent_job_id"]))
    top = format_pairs(pairs)
    times = format_pairs(
        [
            ("created", local_time(job.get("created_time"))),
            ("started", local_time(start)),
            ("ended", local_time(job.get("end_time"))),
            ("duration", format_duration(job_duration(start, job.get("end_time"), now))),
        ]
    )
    return f"{top}\n\n{times}"


def _batch_stats(job: dict[str, Any]) -> str:
    metrics = job.get("batch_metrics") or {}
    row = [
        str(job.get("batches_in_queue", 0)),
        str(job.get("batches_in_flight", 0)),
        str(metrics.get("succeeded", 0)),
        str(metrics.get("failed", 0)),
        str(metrics.get("total", 0)),
        format_seconds(metrics.get("avg_time_per_batch")),
    ]
    return format_table(BATCH_HEADERS, [row]) + items_line(job, "\n")


def items_line(job: dict[str, Any], before: str = "") -> str:
    """Return what a job that isolates failures saved, item by item (else '')."""
    if not job.get("isolate_failures"):
        return ""
    items = job.get("item_metrics") or {}
    return (
        f"{before}items: {items.get('succeeded', 0)} succeeded, {items.get('failed', 0)}"
        " failed (isolate_failures: a failed batch's items that can succeed do)"
    )


def _workers(workers: list[dict[str, Any]]) -> str:
    rows = [
        [
            w.get("worker") or "-",
            w.get("state") or "-",
            "-" if w.get("exit_code") is None else str(w["exit_code"]),
            w.get("error") or w.get("reason") or "",
        ]
        for w in workers
    ]
    return format_table(("worker", "state", "exit code", "detail"), rows)


def _config(job: dict[str, Any]) -> str:
    shown = {key: job[key] for key in _CONFIG_KEYS if key in job}
    return yaml.safe_dump(shown, sort_keys=False, default_flow_style=False, width=100)
