"""``create_app(settings)``: the FastAPI app, its store, supervisor and error table."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from orchestrator.auth import Credentials
from orchestrator.context import Context
from orchestrator.errors import OrchestratorError
from orchestrator.http import manage, metrics, public, worker_protocol
from orchestrator.http.guard import Guard
from orchestrator.jobs.supervisor import Supervisor
from orchestrator.metrics import Telemetry
from orchestrator.settings import Settings
from orchestrator.store.engine import Store


def create_app(settings: Settings) -> FastAPI:
    """Build the orchestrator app; state is opened in the lifespan, not at import."""
    telemetry = Telemetry()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.ensure_dirs()
        credentials = app.state.credentials = Credentials(settings.home)
        store = Store(settings.db_path)
        ctx = Context(settings=settings, store=store, credentials=credentials, telemetry=telemetry)
        supervisor = Supervisor(ctx)
        app.state.ctx = ctx
        supervisor.start()
        _write_server_file(settings)
        try:
            yield
        finally:
            supervisor.stop()
            for backend in ctx.loaded_backends():
                backend.close()
            store.close()
            _remove_server_file(settings)

    app = FastAPI(
        title="cortex-tui orchestrator",
        summary="Batch APIs: submit jobs, follow them, stop them.",
        lifespan=lifespan,
        docs_url="/_cortex/docs",
        redoc_url=None,
        openapi_url="/_cortex/openapi.json",
    )
    app.add_middleware(Guard, allowed_hosts=settings.host_names)
    app.add_middleware(metrics.RequestsInFlight, telemetry=telemetry)
    app.add_exception_handler(OrchestratorError, _orchestrator_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    # Management routes first: "/_cortex/..." must never reach "/{api_name}/{job_id}".
    app.include_router(manage.router)
    app.include_router(metrics.router)
    app.include_router(worker_protocol.router)
    app.include_router(public.router)
    return app


async def _orchestrator_error(_: Request, exc: OrchestratorError) -> JSONResponse:
    return JSONResponse({"error": exc.message}, status_code=exc.status_code)


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body"))
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return JSONResponse({"error": "; ".join(parts)}, status_code=400)


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    """Answer routing errors (no such route, method not allowed) in the same JSON shape."""
    where = f"{request.method} {request.url.path}"
    if exc.status_code == 404:
        error = f"no route {where}: GET /_cortex/openapi.json lists every route"
    else:
        error = f"{where}: {exc.detail}"
    return JSONResponse(
        {"error": error},
        status_code=exc.status_code,
        headers=exc.headers,
    )


def _server_file(settings: Settings) -> str:
    return str(settings.home / "server.json")


def _write_server_file(settings: Settings) -> None:
    """Write ``server.json`` whole or not at all: readers poll for it while it is written."""
    record = {"url": settings.url, "pid": os.getpid(), "backend": settings.backend}
    partial = f"{_server_file(settings)}.{os.getpid()}.tmp"
    with open(partial, "w") as f:
        json.dump(record, f)
    os.replace(partial, _server_file(settings))


def _remove_server_file(settings: Settings) -> None:
    try:
        with open(_server_file(settings)) as f:
            if json.load(f).get("pid") != os.getpid():
                return
        os.remove(_server_file(settings))
    except (OSError, ValueError):
        pass
