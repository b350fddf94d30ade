"""Run the orchestrator with uvicorn."""

from __future__ import annotations

import logging

import uvicorn

from orchestrator.app import create_app
from orchestrator.settings import Settings


def serve(settings: Settings, log_level: str = "warning") -> None:
    """Serve until interrupted. Workers keep running across a restart and reconnect."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=5,
    )
