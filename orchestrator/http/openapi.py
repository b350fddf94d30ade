"""What the OpenAPI document says of each route: its real request body, answers and errors.

Routes read their bodies themselves (to answer 400/413/415 with messages that name the
field, where FastAPI would answer 422), so FastAPI cannot see them: the request bodies
are described here, as JSON Schema, and attached with ``openapi_extra``. Every route
also lists the error answers it can give, all ``{"error": ...}``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from orchestrator.jobs.sources import SOURCE_KINDS
from orchestrator.status import BatchState


class ErrorBody(BaseModel):
    """Every error answer: what is wrong and where; a 500 also has an ``error_id``."""

    error: str
    error_id: str | None = None


def error_answer(description: str) -> dict[str, Any]:
    """Return the ``responses`` entry of an error answer: ``{"error": ...}``."""
    return {"model": ErrorBody, "description": description}


_error = error_answer


#: The errors any route may answer.
COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("Invalid request, or a Host the server does not answer for"),
    401: _error("No token, or not this server's (see `cortex-tui token`)"),
    403: _error("A credential of the wrong kind (e.g. the user's token on a worker route)"),
    404: _error("No such API, job, worker or route"),
    405: _error("Method not allowed on this path"),
    500: _error("Unexpected: the error id is also in the server log"),
}
#: ... and those of a route that takes a body.
BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    413: _error("The body is larger than the limit"),
    415: _error("The body is not application/json"),
}

_INT64 = {"type": "integer", "maximum": 2**63 - 1}
_STRINGS = {"type": "array", "items": {"type": "string", "minLength": 1}}
_FILES = {
    "type": "object",
    "properties": {
        "s3_paths": _STRINGS,
        "paths": _STRINGS,
        "includes": _STRINGS,
        "excludes": _STRINGS,
        "batch_size": {**_INT64, "minimum": 1},
    },
    "required": ["batch_size"],
    "additionalProperties": False,
}
SUBMISSION: dict[str, Any] = {
    "type": "object",
    "description": "A job: exactly one of item_list, delimited_files, file_path_lister.",
    "properties": {
        "item_list": {
            "type": "object",
            "properties": {
                "items": {"type": "array", "minItems": 1},
                "batch_size": {**_INT64, "minimum": 1},
            },
            "required": ["items", "batch_size"],
            "additionalProperties": False,
        },
        "delimited_files": _FILES,
        "file_path_lister": _FILES,
        "workers": {"type": "integer", "minimum": 1, "maximum": 256, "default": 1},
        "config": {"type": "object", "description": "Deep-merged over the API's config"},
        "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 366 * 24 * 3600},
        "retries": {"type": "integer", "minimum": 0, "maximum": 100},
        "backend": {"type": "string"},
        "max_worker_restarts": {"type": "integer", "minimum": 0, "maximum": 10_000},
        "isolate_failures": {
            "type": "boolean",
            "default": False,
            "description": "Split a batch that failed after its retries in halves, recursively,"
            " until each failing item stands alone (bounded; see the failed-batch ledger)",
        },
    },
    "additionalProperties": False,
    "minProperties": 1,
}
assert set(SOURCE_KINDS) <= set(SUBMISSION["properties"])
DEPLOY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "project_dir": {
            "type": "string",
            "pattern": "^/",
            "description": "Absolute path of the project directory",
        },
        "config_file": {"type": "string", "default": "cortex.yaml"},
    },
    "required": ["project_dir"],
    "additionalProperties": False,
}
RETRY: dict[str, Any] = {
    "type": "object",
    "description": "A retry of a job's failed batches; every field is optional (the"
    " parent job's value, or its batches as they were).",
    "properties": {
        "workers": SUBMISSION["properties"]["workers"],
        "config": {"type": "object", "description": "Deep-merged over the parent's config"},
        "batch_size": {
            **_INT64,
            "minimum": 1,
            "description": "Re-split the failed items into batches of this size",
        },
        "timeout": SUBMISSION["properties"]["timeout"],
        "retries": SUBMISSION["properties"]["retries"],
        "backend": SUBMISSION["properties"]["backend"],
        "isolate_failures": SUBMISSION["properties"]["isolate_failures"],
    },
    "additionalProperties": False,
}
WORKER_REPORT: dict[str, Any] = {
    "type": "object",
    "description": "Worker protocol (see runtime/worker.py); only a worker's own secret works",
}


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    """Return ``openapi_extra`` declaring a required JSON body of ``schema``."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


JOB_STATUS: dict[str, Any] = {
    "type": "object",
    "required": [
        *("job_id", "api_name", "workers", "status", "batches_in_queue", "batches_in_flight"),
        *("batch_metrics", "worker_stats", "created_time", "sqs_url", "api_id"),
    ],
    "properties": {
        "job_id": {"type": "string"},
        "api_name": {"type": "string"},
        "status": {"type": "string", "pattern": "^status_"},
        "workers": {"type": "integer"},
        "batches_in_queue": {"type": "integer"},
        "batches_in_flight": {"type": "integer"},
        "batch_metrics": {
            "type": "object",
            "required": ["succeeded", "failed", "total"],
            "properties": {
                "succeeded": {"type": "integer"},
                "failed": {"type": "integer"},
                "total": {"type": "integer"},
                "avg_time_per_batch": {"type": "number"},
            },
        },
        "item_metrics": {
            "type": "object",
            "required": ["succeeded", "failed"],
            "properties": {"succeeded": {"type": "integer"}, "failed": {"type": "integer"}},
        },
        "worker_stats": {"type": "object", "additionalProperties": {"type": "integer"}},
        "config": {"type": "object"},
        "message": {"type": ["string", "null"]},
    },
}


REPLAY: dict[str, Any] = {
    "type": "object",
    "required": [
        *("job_id", "api_name", "api_id", "project_dir", "predictor", "env_names", "env_file"),
        "config",
        *("job_spec", "batch_index", "first_item", "size", "state", "payload"),
    ],
    "properties": {
        "job_id": {"type": "string"},
        "api_name": {"type": "string"},
        "api_id": {"type": "string"},
        "backend": {"type": "string"},
        "project_dir": {"type": "string", "description": "The snapshot the job ran from"},
        "predictor": {"type": "object", "required": ["path"]},
        "env_names": {"type": "array", "items": {"type": "string"}},
        "env_file": {
            "type": ["string", "null"],
            "description": "A file of the orchestrator's user holding predictor.env's values"
            " (JSON; null when it has none); read it, then remove it",
        },
        "config": {"type": "object", "description": "The job's merged config"},
        "job_spec": {"type": "object"},
        "batch_index": {"type": "integer"},
        "batch_id": {"type": "integer"},
        "first_item": {"type": "integer", "description": "The job-wide index of its first item"},
        "size": {"type": "integer"},
        "state": {"type": "string", "enum": [state.value for state in BatchState]},
        "payload": {"description": "The batch's items, exactly as stored"},
        "error": {"type": ["string", "null"]},
        "traceback": {"type": ["string", "null"]},
    },
}


def optional_body(schema: dict[str, Any]) -> dict[str, Any]:
    """Return ``openapi_extra`` declaring an optional JSON body of ``schema``."""
    return {"requestBody": {"required": False, "content": {"application/json": {"schema": schema}}}}


def json_answer(schema: dict[str, Any], description: str = "OK") -> dict[int | str, Any]:
    """Return ``responses`` for a 200 JSON answer of ``schema``."""
    return {200: {"description": description, "content": {"application/json": {"schema": schema}}}}


def text_answer(media_type: str, description: str) -> dict[int | str, Any]:
    """Return ``responses`` for a 200 streamed text answer."""
    return {
        200: {"description": description, "content": {media_type: {"schema": {"type": "string"}}}}
    }
