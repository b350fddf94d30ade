"""The reference's per-API endpoints: submit, list, status, stop."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.convertors import StringConvertor, register_url_convertor

from orchestrator.context import Context
from orchestrator.http import views
from orchestrator.http.deps import context, json_body
from orchestrator.http.openapi import (
    BODY_ERRORS,
    COMMON_ERRORS,
    JOB_STATUS,
    SUBMISSION,
    ErrorBody,
    json_answer,
)
from orchestrator.http.openapi import json_body as body_of
from orchestrator.jobs import control


class ApiNameConvertor(StringConvertor):
    """An API name in a path: any segment but ``_cortex``, which the management routes own.

    A ``/_cortex/...`` path that no management route matches is then an unknown route
    (404 naming it), never a request about an API called ``_cortex``.
    """

    regex = "(?!_cortex(?:/|$))[^/]+"


# Registered before the routes below compile their paths (Starlette keeps one table).
register_url_convertor("api_name", ApiNameConvertor())
router = APIRouter(tags=["batch api"], responses=COMMON_ERRORS)
Ctx = Annotated[Context, Depends(context)]
_LISTED = {**JOB_STATUS, "properties": {**JOB_STATUS["properties"], "config": False}}


@router.post(
    "/{api_name:api_name}",
    summary="Submit a job",
    response_model=None,
    openapi_extra=body_of(SUBMISSION),
    responses={
        **json_answer(
            {
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["job_id", "api_name", "workers", "batches_per_worker"],
                        "properties": {"job_id": {"type": "string"}},
                    },
                    {
                        "type": "object",
                        "required": ["api_name", "dry_run", "batches", "items"],
                        "properties": {"dry_run": {"const": True}},
                    },
                ]
            },
            "The job as submitted (or, with dryRun, what it would enqueue)",
        ),
        **BODY_ERRORS,
    },
)
async def submit(
    api_name: str,
    request: Request,
    ctx: Ctx,
    dry_run: Annotated[bool, Query(alias="dryRun")] = False,
) -> dict[str, Any]:
    """Submit a job; with ``?dryRun=true``, validate it and say what would be enqueued."""
    body = await json_body(request, ctx.settings.max_body_bytes)
    if dry_run:
        return await run_in_threadpool(control.dry_run, ctx, api_name, body)
    return await run_in_threadpool(control.submit_job, ctx, api_name, body)


@router.get(
    "/{api_name:api_name}",
    summary="List an API's jobs, newest first",
    response_model=None,
    responses=json_answer(
        {
            "type": "object",
            "required": ["api_name", "endpoint", "jobs"],
            "properties": {"jobs": {"type": "array", "items": _LISTED}},
        },
        "Each job's status, without its config",
    ),
)
def list_jobs(
    api_name: str, ctx: Ctx, limit: Annotated[int, Query(ge=1, le=10_000)] = 100
) -> dict[str, Any]:
    """Return the API's jobs, newest first."""
    return views.list_jobs(ctx, api_name, limit)


@router.get(
    "/{api_name:api_name}/{job_id}",
    summary="Get a job's status",
    response_model=None,
    responses=json_answer(
        {"type": "object", "required": ["job_status"], "properties": {"job_status": JOB_STATUS}}
    ),
)
def get_job(api_name: str, job_id: str, ctx: Ctx) -> dict[str, Any]:
    """Return ``{"job_status": ...}``."""
    return views.job_status_response(ctx, api_name, job_id)


@router.delete(
    "/{api_name:api_name}/{job_id}",
    summary="Stop a job",
    response_model=None,
    responses={
        **json_answer({"type": "object", "required": ["message"]}),
        409: {"model": ErrorBody, "description": "The job already ended: nothing to stop"},
    },
)
def stop_job(api_name: str, job_id: str, ctx: Ctx) -> dict[str, str]:
    """Stop the job; results produced so far are kept."""
    return control.stop_job(ctx, api_name, job_id)
