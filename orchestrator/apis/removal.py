"""Deleting an API, and what goes with it: its jobs are kept unless purged.

A deleted API keeps its row (``deleted_time``) while it has jobs: they stay readable
(status, results, logs) until ``purge`` or prune removes them. Its running jobs are
stopped, so no job of a deleted API says it runs; purging waits for no worker, so a job
whose workers are still stopping is left for prune (``prune_queries.removable_jobs``).
"""

from __future__ import annotations

from typing import Any

from orchestrator.context import Context, isoformat
from orchestrator.disk import tree_bytes
from orchestrator.errors import NotFound
from orchestrator.jobs.control import fail_job, known_api
from orchestrator.jobs.prune import remove_jobs
from orchestrator.status import JobStatus
from orchestrator.store import api_queries, job_queries, prune_queries


def usage(ctx: Context, api_name: str) -> dict[str, Any]:
    """Return what an API holds: its jobs (and how many run), the bytes their batches hold
    in the database, their logs, and the API's snapshots."""
    api = known_api(ctx, api_name)
    with ctx.store.read() as conn:
        jobs, running, data = prune_queries.api_usage(conn, api_name)
        job_ids = job_queries.ids_of_api(conn, api_name)
    return {
        "api_name": api_name,
        "deleted_time": isoformat(api.deleted_time),
        "jobs": jobs,
        "running_jobs": running,
        "data_bytes": data,
        "log_bytes": sum(tree_bytes(ctx.job_log_dir(job_id)) for job_id in job_ids),
        "snapshot_bytes": tree_bytes(ctx.settings.apis_dir / api_name),
    }


def delete_api(ctx: Context, api_name: str, purge: bool = False) -> dict[str, Any]:
    """Stop an API's running jobs and delete it; its jobs stay readable unless ``purge``.

    Purging also takes the jobs' records, results and logs (of a deleted API too): those
    that ended with their workers gone. A job whose workers are still stopping stays
    until they exit; prune (or purging again) takes it then, and the API's row with it.
    """
    held = usage(ctx, api_name)
    if held["deleted_time"] is not None and not purge:
        raise NotFound(
            f'api "{api_name}" was already deleted at {held["deleted_time"]}; its'
            f" {held['jobs']} job(s) are kept (purge them with: cortex-tui delete"
            f" {api_name} --purge)"
        )
    with ctx.store.read() as conn:
        job_ids = job_queries.ids_of_api(conn, api_name)
    stopped = sum(
        fail_job(ctx, job_id, JobStatus.STOPPED, f"api {api_name} was deleted")
        for job_id in job_ids
    )
    answer: dict[str, Any] = {**held, "stopped_jobs": stopped}
    if held["deleted_time"] is None:
        with ctx.store.write() as conn:
            api_queries.mark_deleted(conn, api_name, ctx.clock())
    if purge:
        return answer | _purge(ctx, api_name, len(job_ids))
    with ctx.store.write() as conn:
        api_queries.forget_deleted_without_jobs(conn)  # with no job, nothing to keep
    kept = f"; its {_jobs(len(job_ids))} {'stays' if len(job_ids) == 1 else 'stay'} readable"
    return answer | {"message": f"deleted {api_name}{kept if job_ids else ''}", "purged": False}


def _purge(ctx: Context, api_name: str, jobs: int) -> dict[str, Any]:
    """Remove the deleted API's jobs that ended with their workers gone; say what stays."""
    with ctx.store.read() as conn:
        found = prune_queries.removable_jobs(conn, None, api_name=api_name)
    removed, _, _ = remove_jobs(ctx, found)
    with ctx.store.read() as conn:
        left = len(job_queries.ids_of_api(conn, api_name))
    message = f"deleted {api_name} and purged its {_jobs(len(removed))}"
    if left:
        message = (
            f"deleted {api_name} and purged {len(removed)} of its {_jobs(jobs)}; {left} still"
            f" stopping: `cortex-tui prune` takes {'it' if left == 1 else 'them'} once"
            f" {'its' if left == 1 else 'their'} workers exit"
        )
    return {
        "message": message,
        "purged": True,
        "purged_jobs": len(removed),
        "stopping_jobs": left,
    }


def _jobs(n: int) -> str:
    return f"{n} job{'' if n == 1 else 's'}"
