"""What replaying one batch of a job needs: the version it ran, its config and its payload.

``cortex-tui replay`` runs the batch again in the user's own Python (``runtime.replay``),
so the answer holds everything a worker of the job is given (``delivery.handlers.job_spec``:
the predictor, the merged config, the ``job_spec``), the snapshot the job ran from (in the
home, whatever backend ran it) and the batch itself. The API's ``predictor.env`` is in no
answer: its values go to a file of this user's only (``env_file``, in the home), which the
CLI reads and removes; files nobody collected go after ``ENV_FILE_TTL_S``.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

from orchestrator.context import Context
from orchestrator.delivery.handlers import job_spec
from orchestrator.errors import NotFound
from orchestrator.jobs.control import get_job
from orchestrator.status import JobStatus
from orchestrator.store import batch_queries
from orchestrator.store.models import Job

#: How long an env file nobody collected is kept.
ENV_FILE_TTL_S = 600


def replay_spec(ctx: Context, api_name: str, job_id: str, index: int) -> dict[str, Any]:
    """Return what replaying batch ``index`` of a job needs.

    Raises:
        NotFound: No such API, job or batch, or the job's snapshot was pruned.
        InvalidRequest: The job id prefix is ambiguous.
    """
    job = get_job(ctx, api_name, job_id)
    with ctx.store.read() as conn:
        row = batch_queries.one(conn, job.job_id, index)
    if row is None:
        raise NotFound(_no_batch(job, index))
    batch_id, first_item, size, payload, state, error, traceback = row
    snapshot = Path(job.project_dir)
    if not snapshot.is_dir():
        raise NotFound(
            f"job {job.job_id} ran api {job.api_name} version {job.api_id}, whose snapshot"
            f" {snapshot} is gone (pruned): a batch cannot be replayed without it"
        )
    spec = job_spec(ctx, job)
    env = job.api_spec["predictor"].get("env") or {}
    return {
        "job_id": job.job_id,
        "api_name": job.api_name,
        "api_id": job.api_id,
        "backend": job.backend,
        "project_dir": str(snapshot),
        "predictor": spec["predictor"],
        "env_names": sorted(env),
        "env_file": str(_env_file(ctx.settings.home / "replay", env)) if env else None,
        "config": spec["config"],
        "job_spec": spec["job_spec"],
        "batch_index": index,
        "batch_id": batch_id,
        "first_item": first_item,
        "size": size,
        "state": state,
        "payload": json.loads(payload),
        "error": error,
        "traceback": traceback,
    }


def _env_file(folder: Path, env: dict[str, Any]) -> Path:
    """Write the env to a new file only this user can read; remove uncollected old ones."""
    folder.mkdir(mode=0o700, exist_ok=True)
    for old in folder.glob("*.json"):
        if time.time() - old.stat().st_mtime > ENV_FILE_TTL_S:
            old.unlink(missing_ok=True)
    path = folder / f"{secrets.token_hex(8)}.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({key: str(value) for key, value in env.items()}, out)
    return path


def _no_batch(job: Job, index: int) -> str:
    """Say which batches the job has, when it has no batch ``index``."""
    where = f'job {job.job_id} of api "{job.api_name}" has no batch {index}'
    if job.total == 0:
        still = job.status == JobStatus.ENQUEUING
        return f"{where}: {'it is still enqueuing' if still else 'it has no batches'}"
    so_far = " so far (it is still enqueuing)" if job.status == JobStatus.ENQUEUING else ""
    return f"{where}: its batches are 0 to {job.total - 1}{so_far}"
