"""The reference's response shapes, built from store rows."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from orchestrator.context import Context, isoformat
from orchestrator.errors import NotFound
from orchestrator.jobs.control import get_job, known_api, submission_view
from orchestrator.status import WorkerState
from orchestrator.store import api_queries, job_queries, worker_queries
from orchestrator.store.models import Job

WORKER_STAT_KEYS = (*(state.value for state in WorkerState), "stalled")


def job_status(
    ctx: Context, job: Job, worker_stats: dict[str, int], *, with_config: bool = True
) -> dict[str, Any]:
    """Return the reference's ``job_status`` object, plus a few extra fields.

    Lists leave out each job's ``config`` (``with_config=False``): it can be large, and
    the job's own status has it.
    """
    metrics: dict[str, Any] = {"succeeded": job.succeeded, "failed": job.failed, "total": job.total}
    if job.succeeded:
        metrics["avg_time_per_batch"] = job.time_sum / job.succeeded
    status: dict[str, Any] = {
        **submission_view(ctx, job, with_config=with_config),
        "status": job.status,
        "message": job.message,
        "batches_in_queue": job.queued,
        "batches_in_flight": job.leased,
        "batch_metrics": metrics,
        # What was saved, item by item (a batch with any failed item counts as failed above).
        "item_metrics": {"succeeded": job.items_succeeded, "failed": job.items_failed},
        "worker_stats": worker_stats,
        "created_time": isoformat(job.created_time),
        "start_time": isoformat(job.start_time),
        "batch_size": job.batch_size,
        "items_enqueued": job.enqueued_items,
        "source": job.source,
        "timeout": job.timeout,
        "retries": job.retries,
        "max_worker_restarts": job.max_restarts,
        "isolate_failures": bool(job.isolate_failures),
    }
    if job.end_time is not None:
        status["end_time"] = isoformat(job.end_time)
    return status


def worker_stats_for(ctx: Context, job_ids: list[str]) -> dict[str, dict[str, int]]:
    """Count each job's workers by state in one query (stalled = pending too long)."""
    stats: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(WORKER_STAT_KEYS, 0))
    if not job_ids:
        return stats
    stalled_before = ctx.clock() - ctx.settings.stalled_after_s
    with ctx.store.read() as conn:
        rows = worker_queries.states(conn, job_ids)
    for job_id, state, created in rows:
        key = state
        if state == WorkerState.PENDING and created < stalled_before:
            key = "stalled"
        stats[job_id][key] += 1
    for job_id in job_ids:  # workers waiting for room under max_live_workers
        if waiting := ctx.waiting_for_cap.get(job_id, 0):
            stats[job_id]["pending"] += waiting
    return stats


def job_status_response(ctx: Context, api_name: str, job_id: str) -> dict[str, Any]:
    """Return ``{"job_status": ...}`` for ``GET /<api>/<job_id>``.

    Clients poll this while jobs run: it reads one row in plain SQL (SQLAlchemy's statement
    and ORM machinery cost most of the time otherwise), without the job's copy of its API spec.
    """
    with ctx.store.read() as conn:
        job = job_queries.status_row(conn, api_name, job_id)
    if job is None:  # a prefix or "latest" (else the NotFound that says which is missing)
        job_id = get_job(ctx, api_name, job_id).job_id
        with ctx.store.read() as conn:
            job = job_queries.status_row(conn, api_name, job_id)
    if job is None:
        raise NotFound(f'api "{api_name}" has no job "{job_id}"')
    stats = worker_stats_for(ctx, [job_id])
    return {"job_status": job_status(ctx, job, stats[job_id])}


def list_jobs(ctx: Context, api_name: str, limit: int = 100) -> dict[str, Any]:
    """Return an API's jobs, newest first (a deleted API's too, with when it was deleted)."""
    api = known_api(ctx, api_name)
    with ctx.store.read_session() as session:
        jobs = job_queries.newest_of_api(session, api_name, limit)
    stats = worker_stats_for(ctx, [j.job_id for j in jobs])
    listing: dict[str, Any] = {
        "api_name": api_name,
        "endpoint": f"{ctx.settings.url}/{api_name}",
        "jobs": [job_status(ctx, j, stats[j.job_id], with_config=False) for j in jobs],
    }
    if api.deleted_time is not None:
        listing["deleted_time"] = isoformat(api.deleted_time)
    return listing


def list_apis(ctx: Context) -> dict[str, Any]:
    """Return every API with its number of running jobs and its latest job."""
    with ctx.store.read_session() as session:
        apis = api_queries.all_by_name(session)
        latest = job_queries.latest_per_api(session)
        running = job_queries.in_progress_per_api(session)
    stats = worker_stats_for(ctx, [j.job_id for j in latest.values()])
    return {
        "apis": [
            {
                "name": api.name,
                "api_id": api.api_id,
                "backend": api.backend,
                "project_dir": api.source_dir,
                "endpoint": f"{ctx.settings.url}/{api.name}",
                "running_jobs": running.get(api.name, 0),
                "latest_job": (
                    job_status(ctx, job, stats[job.job_id], with_config=False)
                    if (job := latest.get(api.name)) is not None
                    else None
                ),
                "created_time": isoformat(api.created_time),
                "updated_time": isoformat(api.updated_time),
            }
            for api in apis
        ]
    }
