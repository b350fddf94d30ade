"""The worker protocol: spec, state reports, lease-and-ack, heartbeats, the hook."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from orchestrator.context import Context
from orchestrator.delivery import handlers
from orchestrator.errors import InvalidRequest
from orchestrator.http.deps import context, json_body
from orchestrator.http.openapi import BODY_ERRORS, COMMON_ERRORS, WORKER_REPORT
from orchestrator.http.openapi import json_body as body_of
from runtime.protocol import MAX_REQUEST_BYTES, Task

router = APIRouter(prefix="/_cortex/workers", tags=["workers"], responses=COMMON_ERRORS)
Ctx = Annotated[Context, Depends(context)]


async def _object(request: Request) -> dict[str, Any]:
    body = await json_body(request, MAX_REQUEST_BYTES)
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return body


@router.get("/{worker_id}/spec")
def spec(worker_id: str, ctx: Ctx) -> dict[str, Any]:
    """Return what the worker needs to load its predictor."""
    return handlers.worker_spec(ctx, worker_id)


@router.post("/{worker_id}/state", openapi_extra=body_of(WORKER_REPORT), responses=BODY_ERRORS)
async def state(worker_id: str, request: Request, ctx: Ctx) -> dict[str, Any]:
    """Record the worker's own state report."""
    body = await _object(request)
    return await run_in_threadpool(handlers.report_state, ctx, worker_id, body)


@router.post("/{worker_id}/next", openapi_extra=body_of(WORKER_REPORT), responses=BODY_ERRORS)
async def next_task(worker_id: str, request: Request, ctx: Ctx) -> Response:
    """Acknowledge the last batch and hand out the next task."""
    body = await _object(request)
    task = await run_in_threadpool(handlers.next_task, ctx, worker_id, body)
    if task["task"] != Task.BATCHES or not task["batches"]:
        return Response(json.dumps(task), media_type="application/json")
    # Splice each batch's stored JSON in as-is, without parsing it again.
    parts = []
    for batch in task["batches"]:
        payload = batch.pop("payload_json")
        parts.append(f'{json.dumps(batch)[:-1]}, "payload": {payload}}}')
    return Response(
        f'{{"task": "{Task.BATCHES}", "batches": [{", ".join(parts)}]}}',
        media_type="application/json",
    )


@router.post("/{worker_id}/heartbeat", openapi_extra=body_of(WORKER_REPORT), responses=BODY_ERRORS)
async def heartbeat(worker_id: str, request: Request, ctx: Ctx) -> dict[str, Any]:
    """Extend the worker's lease."""
    body = await _object(request)
    return await run_in_threadpool(handlers.heartbeat, ctx, worker_id, body)


@router.post("/{worker_id}/hook", openapi_extra=body_of(WORKER_REPORT), responses=BODY_ERRORS)
async def hook(worker_id: str, request: Request, ctx: Ctx) -> dict[str, Any]:
    """Record how on_job_complete went."""
    body = await _object(request)
    return await run_in_threadpool(handlers.report_hook, ctx, worker_id, body)
