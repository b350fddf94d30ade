"""The orchestrator's exception root and its user-facing subclasses.

Each class carries the HTTP status it maps to, so the one handler in ``app.py``
turns any of them into a JSON error without ``HTTPException`` sprinkled through
the store and lifecycle code.
"""

from __future__ import annotations


class OrchestratorError(Exception):
    """Base for every error the orchestrator reports to a user."""

    status_code = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(OrchestratorError):
    """The request body or query is invalid (the message says where)."""

    status_code = 400


class PayloadTooLarge(OrchestratorError):
    """The request body is larger than the limit."""

    status_code = 413


class Forbidden(OrchestratorError):
    """The caller is known but may not do this (e.g. ack a batch it was never handed)."""

    status_code = 403


class NotFound(OrchestratorError):
    """An API, job or resource does not exist."""

    status_code = 404


class Conflict(OrchestratorError):
    """The request conflicts with the current state (e.g. a finished job)."""

    status_code = 409


class ApiSpecError(OrchestratorError):
    """A ``cortex.yaml`` or project directory is invalid."""

    status_code = 400


class SourceError(InvalidRequest):
    """A job's source (item_list, delimited_files, file_path_lister) is invalid."""


class BackendError(OrchestratorError):
    """A backend could not do what was asked (start a worker, build an image)."""

    status_code = 500


class WorkerStartError(BackendError):
    """A worker cannot start because of what its job asks for; retrying cannot help.

    E.g. GPUs the engine cannot give: the job ends with ``status_worker_error``.
    """
