"""Management routes under ``/_cortex``: APIs, logs, results, the failed-batch ledger, retries."""

from __future__ import annotations

import os
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from orchestrator.apis import deploy, removal
from orchestrator.context import Context, isoformat
from orchestrator.errors import InvalidRequest, NotFound
from orchestrator.http import views
from orchestrator.http.deps import context, json_body, optional_json_body
from orchestrator.http.openapi import (
    BODY_ERRORS,
    COMMON_ERRORS,
    DEPLOY,
    REPLAY,
    RETRY,
    error_answer,
    json_answer,
    optional_body,
    text_answer,
)
from orchestrator.http.openapi import json_body as body_of
from orchestrator.jobs import control, logs, prune, replay, results, retry
from orchestrator.jobs.worker_records import short_name
from orchestrator.store import job_queries, worker_queries
from orchestrator.store.models import WorkerRecord

router = APIRouter(prefix="/_cortex", tags=["management"], responses=COMMON_ERRORS)
Ctx = Annotated[Context, Depends(context)]


@router.get("/health")
def health(ctx: Ctx) -> dict[str, Any]:
    """Say the server is up, where its state lives, and its default backend."""
    return {
        "ok": True,
        "home": str(ctx.settings.home),
        "backend": ctx.settings.backend,
        "pid": os.getpid(),
        "url": ctx.settings.url,
    }


@router.post(
    "/apis",
    response_model=None,
    openapi_extra=body_of(DEPLOY),
    responses={
        **json_answer(
            {"type": "object", "required": ["apis"], "properties": {"apis": {"type": "array"}}},
            "Each API of the project: created, updated or up_to_date",
        ),
        **BODY_ERRORS,
    },
)
async def deploy_apis(request: Request, ctx: Ctx) -> dict[str, Any]:
    """Deploy the APIs of a project directory's ``cortex.yaml``."""
    body = await json_body(request, 1024 * 1024)
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object with project_dir")
    return await run_in_threadpool(deploy.deploy, ctx, body)


@router.get("/builds")
def builds(ctx: Ctx) -> dict[str, Any]:
    """List the image builds in progress, with each one's latest step (deploy's progress)."""
    return {"builds": [b for backend in ctx.loaded_backends() for b in backend.active_builds()]}


@router.get("/apis")
def list_apis(ctx: Ctx) -> dict[str, Any]:
    """List APIs with their running jobs and latest job."""
    return views.list_apis(ctx)


@router.get("/apis/{api_name}/usage")
def api_usage(api_name: str, ctx: Ctx) -> dict[str, Any]:
    """Say what an API holds (what deleting it concerns): its jobs, how many run, and the
    bytes of their batches in the database, of their logs and of the API's snapshots."""
    return removal.usage(ctx, api_name)


@router.delete("/apis/{api_name}")
def delete_api(api_name: str, ctx: Ctx, purge: bool = False) -> dict[str, Any]:
    """Stop an API's running jobs and delete it; its jobs stay readable unless ``purge``
    (which also takes a deleted API's kept jobs, with their results and logs)."""
    return removal.delete_api(ctx, api_name, purge)


@router.post("/prune")
def prune_home(
    ctx: Ctx,
    older_than_s: Annotated[float | None, Query(ge=0, le=1e10)] = None,
    dry_run: bool = False,
    ended_before: Annotated[
        float | None,
        Query(
            ge=0,
            le=1e11,
            description="Only jobs that ended before this epoch time (seconds): pass a dry"
            " run's `ended_before` to remove no job its preview did not show",
        ),
    ] = None,
) -> dict[str, Any]:
    """Reclaim disk: ended jobs (that ended ``older_than_s`` ago or more, and before
    ``ended_before``) with their results and logs, snapshots and images nothing uses, the
    database's free space. The answer's ``ended_before`` is the bound it used; a database
    that could not be compacted says why (``database.compacted``, ``database.error``)."""
    return prune.prune(ctx, older_than_s, dry_run, ended_before)


@router.get(
    "/apis/{api_name}/jobs/{job_id}/logs",
    response_class=StreamingResponse,
    responses=text_answer("text/plain", "Log lines, every worker's, in time order"),
)
def job_logs(
    api_name: str,
    job_id: str,
    ctx: Ctx,
    follow: bool = False,
    worker: str | None = None,
) -> StreamingResponse:
    """Stream the job's logs, all workers interleaved; ``follow`` until the job ends."""
    job_id = control.get_job(ctx, api_name, job_id).job_id
    log_dir = ctx.job_log_dir(job_id)
    if worker is not None and not follow:  # a follower may wait for a worker still to come
        names = {short_name(w.worker_id) for w in _workers(ctx, job_id)} | {"orchestrator"}
        if worker not in names:
            known = ", ".join(sorted(names))
            raise NotFound(f'job "{job_id}" has no worker "{worker}" (its logs: {known})')
    if not follow:
        return StreamingResponse(
            logs.in_chunks(logs.read_merged(log_dir, worker)), media_type="text/plain"
        )

    def finished() -> bool:
        return logs.writers_gone(ctx, job_id)

    return StreamingResponse(logs.follow(log_dir, finished, worker), media_type="text/plain")


@router.get(
    "/apis/{api_name}/jobs/{job_id}/results",
    response_class=StreamingResponse,
    responses=text_answer("application/x-ndjson", "One JSON line per item, in item order"),
)
def job_results(
    api_name: str, job_id: str, ctx: Ctx, merge_retries: bool = False
) -> StreamingResponse:
    """Stream the job's results as JSON lines, in item order; with ``merge_retries``, its
    retries' (and their retries') results fill in the items that failed, each line naming
    the job it is from."""
    job_id = control.get_job(ctx, api_name, job_id).job_id
    lines = results.iter_merged if merge_retries else results.iter_results
    return StreamingResponse(lines(ctx, job_id), media_type="application/x-ndjson")


@router.post(
    "/apis/{api_name}/jobs/{job_id}/retry",
    response_model=None,
    openapi_extra=optional_body(RETRY),
    responses={
        **json_answer(
            {
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["job_id", "api_name", "workers", "parent_job_id"],
                        "properties": {
                            "job_id": {"type": "string"},
                            "parent_job_id": {"type": "string"},
                        },
                    },
                    {
                        "type": "object",
                        "required": ["dry_run", "parent_job_id", "workers", "source"],
                        "properties": {"dry_run": {"const": True}},
                    },
                ]
            },
            "The new job, as a submission answers (or, with dryRun, what it would run)",
        ),
        409: error_answer("The job is still running, or has no failed batch: nothing to retry"),
        **BODY_ERRORS,
    },
)
async def retry_job(
    api_name: str,
    job_id: str,
    request: Request,
    ctx: Ctx,
    dry_run: Annotated[bool, Query(alias="dryRun")] = False,
) -> dict[str, Any]:
    """Submit a new job of the job's failed batches (their items keep their indices), with
    its config deep-merged under the body's ``config``; the body is optional. With
    ``?dryRun=true``, check it all and say what would run, submitting nothing."""
    body = await optional_json_body(request, ctx.settings.max_body_bytes)
    return await run_in_threadpool(retry.retry_job, ctx, api_name, job_id, body, dry_run)


@router.get("/apis/{api_name}/jobs/{job_id}/failed")
def job_failed(
    api_name: str, job_id: str, ctx: Ctx, limit: Annotated[int, Query(ge=1, le=1_000_000)] = 1000
) -> dict[str, Any]:
    """Return the job's failed-batch ledger."""
    job_id = control.get_job(ctx, api_name, job_id).job_id
    return {"job_id": job_id, "failed_batches": results.failed_batches(ctx, job_id, limit)}


@router.get("/apis/{api_name}/jobs/{job_id}/workers")
def job_workers(api_name: str, job_id: str, ctx: Ctx) -> dict[str, Any]:
    """Return each worker of the job: state, how it ended, its backend handle, and the
    latest samples of the GPUs it holds (``gpus``, taken at ``gpus_time``)."""
    job_id = control.get_job(ctx, api_name, job_id).job_id
    rows = _workers(ctx, job_id)
    return {
        "workers": [
            {
                "worker": short_name(w.worker_id),
                "worker_id": w.worker_id,
                "slot": w.slot,
                "state": w.state,
                "reason": w.reason,
                "error": w.error,
                "exit_code": w.exit_code,
                "handle": w.handle,
                "created_time": isoformat(w.created_time),
                "ended_time": isoformat(w.ended_time),
                "gpus": w.gpus or [],
                "gpus_time": isoformat(w.gpus_time),
            }
            for w in rows
        ]
    }


@router.get(
    "/apis/{api_name}/jobs/{job_id}/batches/{batch_index}/replay",
    responses=json_answer(REPLAY, "What replaying the batch needs (see runtime/replay.py)"),
)
def batch_replay(
    api_name: str,
    job_id: str,
    batch_index: Annotated[int, Path(ge=0, le=2**63 - 1)],
    ctx: Ctx,
) -> dict[str, Any]:
    """Return what replaying one batch needs: the snapshot the job ran, its predictor,
    ``predictor.env``, merged config and ``job_spec``, and the batch's exact payload."""
    return replay.replay_spec(ctx, api_name, job_id, batch_index)


@router.get("/queues/{job_id}")
def queue_state(job_id: str, ctx: Ctx) -> dict[str, Any]:
    """Return a job's queue counters (the local backends' ``sqs_url``); the job id may be a
    unique prefix, or ``latest`` for the newest job of any API."""
    full_id = control.resolve_job_id(ctx, None, job_id)
    with ctx.store.read() as conn:
        counters = job_queries.queue_counters(conn, full_id)
    if counters is None:
        raise NotFound(f'no queue for job "{job_id}"')
    return counters


def _workers(ctx: Context, job_id: str) -> list[WorkerRecord]:
    with ctx.store.read_session() as session:
        return worker_queries.of_job(session, job_id)
