"""Shared route plumbing: the context, and reading a JSON body within the size limit."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from orchestrator.context import Context
from orchestrator.errors import InvalidRequest, PayloadTooLarge
from orchestrator.http import jsontext


def context(request: Request) -> Context:
    """Return the orchestrator context the app was built with."""
    ctx: Context = request.app.state.ctx
    return ctx


async def json_body(request: Request, limit: int) -> Any:
    """Read and parse a JSON body; 413 past ``limit`` bytes, 400 if it is not JSON."""
    raw = await _read(request, limit)
    if not raw.strip():
        raise InvalidRequest("the request body is empty: send a JSON object")
    return await run_in_threadpool(jsontext.parse, raw)


async def optional_json_body(request: Request, limit: int) -> Any:
    """Read and parse a JSON body as ``json_body`` does; None when there is none."""
    raw = await _read(request, limit)
    if not raw.strip():
        return None
    return await run_in_threadpool(jsontext.parse, raw)


async def _read(request: Request, limit: int) -> bytes:
    """Return the raw body; 413 past ``limit`` bytes (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(_too_large(int(declared), limit))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(_too_large(size, limit))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int) -> str:
    return (
        f"the request body is {size} bytes or more, over the {limit}-byte limit; for larger"
        " jobs write the items as newline-delimited JSON files and submit delimited_files"
    )
