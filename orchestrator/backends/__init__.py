"""Backends by name, imported lazily so heavy SDKs load only when used."""

from __future__ import annotations

import importlib

from orchestrator.backends.base import Backend, WorkerLaunch, WorkerProbe
from orchestrator.errors import InvalidRequest
from orchestrator.settings import Settings

__all__ = ["BACKEND_CLASSES", "Backend", "WorkerLaunch", "WorkerProbe", "load_backend"]

BACKEND_CLASSES = {
    "process": "orchestrator.backends.process:ProcessBackend",
    "docker": "orchestrator.backends.docker.backend:DockerBackend",
    "aws": "orchestrator.backends.aws.backend:AwsBackend",
}


def load_backend(name: str, settings: Settings) -> Backend:
    """Build the backend called ``name``."""
    try:
        target = BACKEND_CLASSES[name]
    except KeyError:
        known = ", ".join(sorted(BACKEND_CLASSES))
        raise InvalidRequest(f'backend "{name}" is not available here (known: {known})') from None
    module_name, class_name = target.split(":")
    cls: type[Backend] = getattr(importlib.import_module(module_name), class_name)
    return cls(settings)
