"""The reference's per-API endpoints: submit, list, status, stop."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from orchestrator import jobs, views
from orchestrator.context import Context
from orchestrator.routes.deps import context, json_body

router = APIRouter(tags=["batch api"])
Ctx = Annotated[Context, Depends(context)]


@router.post("/{api_name}", summary="Submit a job")
async def submit(
    api_name: str,
    request: Request,
    ctx: Ctx,
    dry_run: Annotated[bool, Query(alias="dryRun")] = False,
) -> dict[str, Any]:
    """Submit a job; with ``?dryRun=true``, validate it and say what would be enqueued."""
    body = await json_body(request, ctx.settings.max_body_bytes)
    if dry_run:
        return await run_in_threadpool(jobs.dry_run, ctx, api_name, body)
    return await run_in_threadpool(jobs.submit_job, ctx, api_name, body)


@router.get("/{api_name}", summary="List an API's jobs, newest first")
def list_jobs(
    api_name: str, ctx: Ctx, limit: Annotated[int, Query(ge=1, le=10_000)] = 100
) -> dict[str, Any]:
    """Return the API's jobs, newest first."""
    return views.list_jobs(ctx, api_name, limit)


@router.get("/{api_name}/{job_id}", summary="Get a job's status")
def get_job(api_name: str, job_id: str, ctx: Ctx) -> dict[str, Any]:
    """Return ``{"job_status": ...}``."""
    return views.job_status_response(ctx, api_name, job_id)


@router.delete("/{api_name}/{job_id}", summary="Stop a job")
def stop_job(api_name: str, job_id: str, ctx: Ctx) -> dict[str, str]:
    """Stop the job; results produced so far are kept."""
    return jobs.stop_job(ctx, api_name, job_id)
