"""Retry what failed: a new job made of exactly a finished job's failed batches.

The retry goes through the same path as a submission (``control.create_job``), so it runs
on every backend; it records ``parent_job_id``, and its batches keep the parent's item
indices (``retry_source``), so ``results.iter_merged`` can put the two back together.
"""

from __future__ import annotations

import difflib
from typing import Any

from orchestrator.context import Context
from orchestrator.errors import Conflict, InvalidRequest
from orchestrator.jobs.control import create_job, get_api, get_job
from orchestrator.jobs.options import JobOptions, check_config_size, deep_merge, parse_options
from orchestrator.jobs.retry_source import RetrySource, resplit_count
from orchestrator.status import JobStatus
from orchestrator.store import batch_queries
from orchestrator.store.models import Job

#: What a retry's body may hold; everything else comes from the parent job.
RETRY_KEYS = (
    "workers",
    "config",
    "batch_size",
    "timeout",
    "retries",
    "backend",
    "isolate_failures",
)
MAX_BATCH_SIZE = 2**63 - 1


def retry_job(
    ctx: Context, api_name: str, job_id: str, body: object, dry_run: bool = False
) -> dict[str, Any]:
    """Submit a new job of a job's failed batches; return it as a submission does (with
    ``dry_run``, check everything and return what would run, submitting nothing).

    Raises:
        NotFound: No such API or job (or the API was deleted).
        Conflict: The job is still enqueuing or running, or has no failed batch.
        InvalidRequest: The body is not a JSON object of ``RETRY_KEYS``.
    """
    fields = _fields(body)
    batch_size = _batch_size(fields.pop("batch_size", None))
    options = parse_options(fields, max_config_bytes=ctx.settings.max_config_bytes)
    parent = get_job(ctx, api_name, job_id)
    _check_retryable(parent)
    api = get_api(ctx, api_name)
    with ctx.store.read() as conn:
        spans = batch_queries.failed_spans(conn, parent.job_id)
    items = sum(size for _, size in spans)
    batches = len(spans) if batch_size is None else resplit_count(spans, batch_size)
    source = RetrySource(
        ctx.store,
        parent.job_id,
        parent.batch_size if batch_size is None else batch_size,
        batch_size is not None,
        {"batches": batches, "items": items},
    )
    resolved = _resolve(ctx, parent, api.spec, options, set(fields), batches)
    if dry_run:
        return {
            "dry_run": True,
            "parent_job_id": parent.job_id,
            "workers": resolved["workers"],
            "source": source.describe(),
        }
    job = create_job(ctx, api, resolved, source, parent_job_id=parent.job_id)
    ctx.log_event(parent.job_id, f"retry {job['job_id']} submitted: {batches} failed batches")
    return {**job, "source": source.describe()}


def _check_retryable(parent: Job) -> None:
    """Refuse a job still in progress, and one with nothing failed (saying why): no failed
    batch, and no item isolation already found failing (a job stopped mid-search has such
    items before their batch counts as failed)."""
    status = JobStatus(parent.status)
    if not status.is_terminal:
        raise Conflict(
            f"job {parent.job_id} is still {status.value}: wait for it to end (or stop it with"
            f" cortex-tui delete {parent.api_name} {parent.job_id}), then retry its failed batches"
        )
    if parent.failed or parent.items_failed:
        return
    message = f"job {parent.job_id} has no failed batches: nothing to retry"
    unfinished = parent.total - parent.succeeded
    if unfinished > 0:
        message += (
            f" (it ended {status.value} with {unfinished} of {parent.total} batches unfinished;"
            " retry re-runs failed batches only: submit the job again for the rest)"
        )
    raise Conflict(message)


def _fields(body: object) -> dict[str, Any]:
    """Return the body's fields (none for an empty body), refusing unknown ones."""
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidRequest(
            "the request body must be a JSON object (or empty), with any of "
            + ", ".join(RETRY_KEYS)
        )
    for key in body:
        if key not in RETRY_KEYS:
            close = difflib.get_close_matches(key, RETRY_KEYS, n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            raise InvalidRequest(
                f'unknown field "{key}"{hint}: a retry takes {", ".join(RETRY_KEYS)};'
                " its items are the failed batches' own"
            )
    return dict(body)


def _batch_size(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_BATCH_SIZE:
        raise InvalidRequest(f"batch_size: must be a whole number of at least 1, got {value!r}")
    return value


def _resolve(
    ctx: Context,
    parent: Job,
    spec: dict[str, Any],
    options: JobOptions,
    given: set[str],
    batches: int,
) -> dict[str, Any]:
    """Resolve the retry's options: the parent's, overridden by those the body ``given``."""
    backend = options.backend or parent.backend
    ctx.backend(backend).check_job(spec)
    workers = options.workers if "workers" in given else max(1, min(parent.workers, batches))
    config = deep_merge(parent.config, options.config)
    check_config_size(config, ctx.settings.max_config_bytes, "merged over the job's, it ")
    return {
        "workers": workers,
        "config": config,
        "timeout": options.timeout if "timeout" in given else parent.timeout,
        "retries": parent.retries if options.retries is None else options.retries,
        "backend": backend,
        "max_restarts": ctx.settings.restarts_per_worker * workers,
        "isolate_failures": (
            options.isolate_failures if "isolate_failures" in given else parent.isolate_failures
        ),
    }
