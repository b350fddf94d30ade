"""Submitting, enqueuing, starting and stopping jobs."""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import secrets
import threading
from pathlib import Path
from typing import Any

from orchestrator.context import Context, isoformat
from orchestrator.errors import Conflict, InvalidRequest, NotFound, SourceError
from orchestrator.jobs import worker_records
from orchestrator.jobs.lifecycle import set_status
from orchestrator.jobs.options import deep_merge, parse_options
from orchestrator.jobs.retry_source import RetrySource
from orchestrator.jobs.sources import Source, parse_source, source_from_spec
from orchestrator.status import JobStatus
from orchestrator.store import api_queries, job_queries, queue, remote_queries
from orchestrator.store.models import Api, Job

ENQUEUE_CHUNK = 2000
#: An ambiguous job id prefix lists at most this many of the jobs it starts.
MAX_CANDIDATES = 5


def new_job_id(now: float) -> str:
    """Return a 16-hex-digit id whose prefix sorts by submission time."""
    return f"{int(now * 1000):011x}{secrets.token_hex(3)[:5]}"


def get_api(ctx: Context, api_name: str) -> Api:
    """Return a deployed API or raise ``NotFound`` (for a deleted one too)."""
    api = known_api(ctx, api_name)
    if api.deleted_time is not None:
        raise NotFound(
            f'api "{api_name}" was deleted at {isoformat(api.deleted_time)}; its jobs stay'
            " readable, and deploying it again brings it back (cortex-tui deploy)"
        )
    return api


def known_api(ctx: Context, api_name: str) -> Api:
    """Return an API that is deployed, or deleted with its jobs kept; else raise ``NotFound``."""
    with ctx.store.read_session() as session:
        api = api_queries.get(session, api_name)
        names = [] if api is not None else [a.name for a in api_queries.all_by_name(session)]
    if api is None:
        close = difflib.get_close_matches(api_name, names, n=1)
        hint = f'did you mean "{close[0]}"?' if close else "deploy it with: cortex-tui deploy"
        raise NotFound(f'api "{api_name}" is not deployed ({hint})')
    return api


def get_job(ctx: Context, api_name: str, job_id: str) -> Job:
    """Return a job of an API by its id, any unique prefix of it, or ``latest`` (the newest).

    Raises:
        NotFound: No such API, or no job of it matches.
        InvalidRequest: The prefix starts more than one job (the message lists them).

    The jobs of a deleted API stay readable until they are purged or pruned.
    """
    known_api(ctx, api_name)
    with ctx.store.read_session() as session:
        job = job_queries.of_api(session, api_name, resolve_job_id(ctx, api_name, job_id))
    if job is None:
        raise NotFound(f'api "{api_name}" has no job "{job_id}"')
    return job


def resolve_job_id(ctx: Context, api_name: str | None, job_id: str) -> str:
    """Return the full id a job id, unique prefix or ``latest`` names (as given, if none).

    With ``api_name`` None the id names a job of any API, and ``latest`` the newest of all.
    """
    if job_id != "latest" and not re.fullmatch(r"[0-9a-f]{1,15}", job_id):
        return job_id
    prefix = "" if job_id == "latest" else job_id
    with ctx.store.read() as conn:
        found = job_queries.ids_starting(conn, api_name, prefix, MAX_CANDIDATES + 1)
    if job_id == "latest" or len(found) <= 1:
        return found[0] if found else job_id
    shown = ", ".join(found[:MAX_CANDIDATES]) + (", ..." if len(found) > MAX_CANDIDATES else "")
    of_api = "" if api_name is None else f' of api "{api_name}"'
    raise InvalidRequest(
        f'job id "{job_id}"{of_api} is ambiguous: it starts {shown}; give more of it'
    )


def prepare_submission(
    ctx: Context, api_name: str, body: object
) -> tuple[Api, dict[str, Any], Source]:
    """Validate a submission against its API; return the API, options and source."""
    api = get_api(ctx, api_name)
    options = parse_options(body, max_config_bytes=ctx.settings.max_config_bytes)
    assert isinstance(body, dict)
    roots = [Path(os.path.realpath(api.source_dir)), *ctx.settings.source_root_list]
    source = parse_source(body, base_dir=Path(api.source_dir), roots=roots, aws=ctx.aws)
    backend_name = options.backend or api.backend
    ctx.backend(backend_name).check_job(api.spec)
    resolved = {
        "workers": options.workers,
        "config": deep_merge(api.spec["predictor"].get("config") or {}, options.config),
        "timeout": options.timeout,
        "retries": ctx.settings.default_retries if options.retries is None else options.retries,
        "backend": backend_name,
        "isolate_failures": options.isolate_failures,
        "max_restarts": (
            options.max_worker_restarts
            if options.max_worker_restarts is not None
            else ctx.settings.restarts_per_worker * options.workers
        ),
    }
    return api, resolved, source


def dry_run(ctx: Context, api_name: str, body: object) -> dict[str, Any]:
    """Validate a submission fully and describe what it would enqueue."""
    _, options, source = prepare_submission(ctx, api_name, body)
    return {"api_name": api_name, "dry_run": True, **options, **source.dry_run()}


def submit_job(ctx: Context, api_name: str, body: object) -> dict[str, Any]:
    """Create a job in ``status_enqueuing`` and enqueue its source in the background."""
    api, options, source = prepare_submission(ctx, api_name, body)
    return create_job(ctx, api, options, source)


def create_job(
    ctx: Context,
    api: Api,
    options: dict[str, Any],
    source: Source,
    parent_job_id: str | None = None,
) -> dict[str, Any]:
    """Store a job of ``api`` with resolved ``options``, start enqueuing ``source``, and
    return its submission view (``parent_job_id``: the job a retry re-runs batches of)."""
    now = ctx.clock()
    job = Job(
        job_id=new_job_id(now),
        api_name=api.name,
        api_id=api.api_id,
        api_spec=api.spec,
        project_dir=api.project_dir,
        backend=options["backend"],
        workers=options["workers"],
        batch_size=source.batch_size,
        config=options["config"],
        source=source.describe(),
        timeout=options["timeout"],
        retries=options["retries"],
        max_restarts=options["max_restarts"],
        isolate_failures=bool(options.get("isolate_failures")),
        isolation_calls_factor=ctx.settings.isolation_max_calls_factor,
        parent_job_id=parent_job_id,
        created_time=now,
        start_time=now,  # enqueuing is the job's first stage, so it starts at once
    )
    _insert(ctx, job, source.to_spec())
    ctx.log_event(job.job_id, f"job submitted: {json.dumps(job.source)}")
    start_enqueue(ctx, job.job_id)
    expected = job.source.get("batches")
    if not isinstance(expected, int):
        items = job.source.get("items")
        expected = math.ceil(items / job.batch_size) if isinstance(items, int) else 0
    return {**submission_view(ctx, job), "batches_per_worker": _per_worker(expected, job.workers)}


def _insert(ctx: Context, job: Job, source_spec: dict[str, Any]) -> None:
    """Store a new job, checking in the same write that its API is still deployed as the
    version the submission was checked against (and that a retry's parent still exists).

    A delete, a deploy or a prune since those checks would otherwise leave a running job
    on an API that is gone, or on a snapshot prune no longer keeps.

    Raises:
        NotFound: The API was deleted or deployed again meanwhile, or the parent removed.
    """
    with ctx.store.session() as session:
        version = api_queries.deployed_version(session, job.api_name)
        if version != job.api_id:
            get_api(ctx, job.api_name)  # deleted (or purged) meanwhile: it says so
            raise NotFound(
                f'api "{job.api_name}" was deployed again (as {version}) while the job was'
                " submitted: submit it again"
            )
        if job.parent_job_id is not None and job_queries.get(session, job.parent_job_id) is None:
            raise NotFound(
                f"job {job.parent_job_id} was removed while its retry was submitted"
                " (prune, or delete --purge): there is nothing left to retry"
            )
        job_queries.add(session, job, source_spec)


def start_enqueue(ctx: Context, job_id: str) -> threading.Thread:
    """Enqueue a job's batches on a background thread (also used to resume)."""
    thread = threading.Thread(
        target=enqueue_job, args=(ctx, job_id), name=f"enqueue-{job_id}", daemon=True
    )
    thread.start()
    return thread


def enqueue_job(ctx: Context, job_id: str) -> None:
    """Write a job's batches in chunks, then start its workers.

    Each chunk commits with the job's ``total``, so after a crash enqueuing resumes
    after the last committed batch; sources list files in a fixed order.
    """
    try:
        with ctx.store.read() as conn:
            progress = job_queries.enqueue_progress(conn, job_id)
        if progress is None:
            return
        done, _, spec = progress
        source = _source_of(ctx, json.loads(spec))
        chunk: list[tuple[str, int, int, int, str]] = []
        index = 0
        for first_item, size, payload in source.placed_batches():
            if index >= done:
                chunk.append((job_id, index, first_item, size, payload))
            index += 1
            if len(chunk) >= ENQUEUE_CHUNK:
                if not _write_chunk(ctx, job_id, chunk):
                    return
                chunk = []
        if chunk and not _write_chunk(ctx, job_id, chunk):
            return
    except SourceError as e:
        _end_enqueue(ctx, job_id, JobStatus.ENQUEUE_FAILED, e.message)
        return
    except Exception as e:  # an orchestrator bug must still end the job truthfully
        _end_enqueue(ctx, job_id, JobStatus.UNEXPECTED_ERROR, f"enqueuing failed: {e!r}")
        raise
    if index == 0:
        _end_enqueue(ctx, job_id, JobStatus.ENQUEUE_FAILED, "the source produced no batches")
        return
    with ctx.store.write() as conn:
        job_queries.drop_source(conn, job_id)
        moved = set_status(ctx, conn, job_id, JobStatus.RUNNING, None)
    if moved:
        ctx.wake()  # the supervisor starts the workers


def _source_of(ctx: Context, spec: dict[str, Any]) -> Source:
    """Rebuild a job's source from its stored spec (a retry's reads its parent's batches)."""
    if spec.get("kind") == RetrySource.kind:
        return RetrySource.from_spec(ctx.store, spec)
    return source_from_spec(spec, aws=ctx.aws)


def _write_chunk(ctx: Context, job_id: str, chunk: list[tuple[str, int, int, int, str]]) -> bool:
    """Insert a chunk of batches; return False if the job stopped meanwhile.

    A job that ended while enqueuing (stopped, its API deleted) no longer needs its
    source, which may hold every item: it is dropped here, as it is after the last chunk.
    """
    with ctx.store.write() as conn:
        if job_queries.status_of(conn, job_id) != JobStatus.ENQUEUING:
            job_queries.drop_source(conn, job_id)
            return False
        queue.enqueue(conn, job_id, chunk)
    return True


def _end_enqueue(ctx: Context, job_id: str, status: JobStatus, message: str) -> None:
    with ctx.store.write() as conn:
        job_queries.drop_source(conn, job_id)
        set_status(ctx, conn, job_id, status, message)


def fail_job(ctx: Context, job_id: str, status: JobStatus, message: str | None) -> bool:
    """End a job with ``status`` and stop its workers; return whether it moved."""
    with ctx.store.write() as conn:
        moved = set_status(ctx, conn, job_id, status, message)
    if moved:
        worker_records.stop_all(ctx, job_id)
    return moved


def stop_job(ctx: Context, api_name: str, job_id: str) -> dict[str, str]:
    """Stop a job: its workers get SIGTERM then SIGKILL; results so far are kept."""
    job = get_job(ctx, api_name, job_id)
    job_id = job.job_id
    status = JobStatus(job.status)
    if status.is_terminal and status is not JobStatus.STOPPED:
        raise Conflict(f"job {job_id} already ended with {status.value}; there is nothing to stop")
    if status is JobStatus.STOPPED:  # stopping twice is harmless, and says so
        return {"message": f"job {job_id} was already stopped"}
    fail_job(ctx, job_id, JobStatus.STOPPED, "stopped by request")
    return {"message": f"stopped job {job_id}"}


def submission_view(ctx: Context, job: Job, *, with_config: bool = True) -> dict[str, Any]:
    """Return the reference's submission fields for a job (lists leave out its config)."""
    view: dict[str, Any] = {
        "job_id": job.job_id,
        "api_name": job.api_name,
        "workers": job.workers,
        "batches_per_worker": _per_worker(job.total, job.workers),
    }
    if with_config:
        view["config"] = job.config
    return view | {
        "api_id": job.api_id,
        "sqs_url": _queue_url(ctx, job),
        "created_time": isoformat(job.created_time),
        "backend": job.backend,
        "status": job.status,
        "parent_job_id": job.parent_job_id,
    }


def _queue_url(ctx: Context, job: Job) -> str:
    """Return the job's work queue: its SQS queue (aws), or the local queue's counters."""
    if job.backend == "aws":
        with ctx.store.read() as conn:
            queues = remote_queries.get(conn, job.job_id)
        if queues is not None:
            return queues.work_url
    return f"{ctx.settings.url}/_cortex/queues/{job.job_id}"


def _per_worker(total: int, workers_: int) -> int:
    return math.ceil(total / workers_) if workers_ else 0
