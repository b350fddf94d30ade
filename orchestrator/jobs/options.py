"""Validate a job submission body (everything but its source, see ``sources``)."""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import InvalidRequest
from orchestrator.jobs.sources import SOURCE_KINDS

MAX_WORKERS = 256
MAX_TIMEOUT_S = 366 * 24 * 3600
_KEYS = (
    *SOURCE_KINDS,
    "workers",
    "config",
    "timeout",
    "retries",
    "backend",
    "max_worker_restarts",
    "isolate_failures",
)


@dataclass(frozen=True)
class JobOptions:
    """The validated options of a job submission."""

    workers: int
    config: dict[str, Any]
    timeout: float | None
    retries: int | None
    backend: str | None
    max_worker_restarts: int | None
    isolate_failures: bool = False


def check_config_size(config: dict[str, Any], max_config_bytes: int, what: str = "") -> None:
    """Refuse a job config over ``max_config_bytes`` of JSON (UTF-8)."""
    size = len(json.dumps(config, ensure_ascii=False).encode())
    if size > max_config_bytes:
        raise InvalidRequest(
            f"config: {what}is {size} bytes of JSON, over the {max_config_bytes}-byte limit"
            " (the max_config_bytes setting); pass large data as items or files instead"
        )


def parse_options(body: object, *, max_config_bytes: int) -> JobOptions:
    """Check a submission body's keys and options; raise ``InvalidRequest`` naming the field."""
    if not isinstance(body, dict):
        raise InvalidRequest(f"the request body must be a JSON object, got {_type(body)}")
    for key in body:
        if key not in _KEYS:
            close = difflib.get_close_matches(key, _KEYS, n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            raise InvalidRequest(f'unknown field "{key}"{hint}')
    config = body.get("config", {})
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise InvalidRequest(f"config: must be a JSON object, got {_type(config)}")
    check_config_size(config, max_config_bytes)
    backend = body.get("backend")
    if backend is not None and not isinstance(backend, str):
        raise InvalidRequest(f"backend: must be a string, got {_type(backend)}")
    isolate = body.get("isolate_failures", False)
    if not isinstance(isolate, bool):
        raise InvalidRequest(f"isolate_failures: must be true or false, got {_type(isolate)}")
    return JobOptions(
        workers=_int(body, "workers", default=1, low=1, high=MAX_WORKERS),
        config=config,
        timeout=_timeout(body.get("timeout")),
        retries=_int(body, "retries", default=None, low=0, high=100),
        backend=backend,
        max_worker_restarts=_int(body, "max_worker_restarts", default=None, low=0, high=10_000),
        isolate_failures=isolate,
    )


def _int(body: dict[str, Any], key: str, *, default: int | None, low: int, high: int) -> Any:
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{key}: must be an integer, got {_type(value)}")
    if not low <= value <= high:
        raise InvalidRequest(f"{key}: must be between {low} and {high}, got {value}")
    return value


def _timeout(value: object) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 < value <= MAX_TIMEOUT_S
    ):
        raise InvalidRequest(
            f"timeout: must be a number of seconds > 0 and at most {MAX_TIMEOUT_S}, got {value!r}"
        )
    return float(value)


def _type(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), type(value).__name__)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``override`` merged in, recursively; ``override`` wins."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
