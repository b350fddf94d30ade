"""What workers call: their spec, state reports, lease-and-ack, heartbeats, the hook."""

from __future__ import annotations

import json
import math
from typing import Any, TypeGuard

from sqlalchemy.engine import Connection
from sqlmodel import Session, select

from orchestrator.context import Context
from orchestrator.delivery import queue
from orchestrator.errors import Forbidden, InvalidRequest, NotFound
from orchestrator.jobs.control import fail_job, submission_view
from orchestrator.jobs.lifecycle import finished_status, read_counts, set_status
from orchestrator.jobs.worker_records import short_name
from orchestrator.status import JobStatus, WorkerState
from orchestrator.store.models import Job, Worker

#: Reported by the runtime when the predictor cannot even be loaded: retrying is pointless.
FATAL_REASONS = ("load_error",)
_REPORTABLE = ("initializing", "running", "failed", "done")
#: The most batches one lease request may ask for ...
MAX_LEASE = 1000
#: ... and the most acks or batch ids one request may carry.
_MAX_LIST = 10_000


def worker_spec(ctx: Context, worker_id: str) -> dict[str, Any]:
    """Return what a worker needs to load its predictor and run its job."""
    with ctx.store.read_session() as session:
        worker = session.get(Worker, worker_id)
        if worker is None:
            raise NotFound(f'worker "{worker_id}" is unknown')
        job = _job(session, worker.job_id)
    predictor = job.api_spec["predictor"]
    return {
        "worker_id": worker_id,
        "worker_name": short_name(worker_id),
        "job_id": job.job_id,
        "api_name": job.api_name,
        "predictor": {"path": predictor["path"], "python_path": predictor.get("python_path")},
        "config": job.config,
        "job_spec": {**submission_view(ctx, job), "timeout": job.timeout, "source": job.source},
        "heartbeat_interval_s": ctx.settings.heartbeat_interval_s,
        "prefetch_window_s": ctx.settings.prefetch_window_s,
    }


def report_state(ctx: Context, worker_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Record a worker's own report: initializing, running, failed (with why), or done."""
    state = body.get("state")
    if state not in _REPORTABLE:
        raise InvalidRequest(f"state: must be one of {', '.join(_REPORTABLE)}, got {state!r}")
    now = ctx.clock()
    with ctx.store.write() as conn:
        job_id = _worker_job(conn, worker_id)
        if state in ("initializing", "running"):
            conn.exec_driver_sql(
                "UPDATE worker SET state = ?, last_seen = ?"
                " WHERE worker_id = ? AND state IN (?, ?)",
                (state, now, worker_id, WorkerState.PENDING, WorkerState.INITIALIZING),
            )
        else:
            reason = "done" if state == "done" else str(body.get("reason") or "crash")
            conn.exec_driver_sql(
                "UPDATE worker SET reason = ?, error = ?, last_seen = ? WHERE worker_id = ?",
                (reason, body.get("error"), now, worker_id),
            )
    if state == "failed":
        ctx.log_event(job_id, f"worker {short_name(worker_id)} reports: {body.get('error')}")
        if body.get("reason") in FATAL_REASONS:
            fail_job(ctx, job_id, JobStatus.WORKER_ERROR, str(body.get("error")))
    return {"ok": True}


def next_task(ctx: Context, worker_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Take the worker's acks (and, when it stops, its unstarted batches); hand out work.

    Tasks: ``batches`` (up to ``want`` of them, fewer near the end of the queue so
    that the last batches spread over every worker); ``wait`` while other workers
    still hold the last batches; ``on_job_complete`` for exactly one worker once
    every batch has finished; ``exit`` when there is nothing more for this worker.
    """
    acks = _list(body, "acks")
    release = _leased_ids(ctx, worker_id, _list(body, "release"), "release")
    want = body.get("want", 1)
    if isinstance(want, bool) or not isinstance(want, int) or not 0 <= want <= MAX_LEASE:
        raise InvalidRequest(f"want: must be an integer from 0 to {MAX_LEASE}, got {want!r}")
    now = ctx.clock()
    with ctx.store.write() as conn:
        job_id = _worker_job(conn, worker_id)
        status, retries = conn.exec_driver_sql(
            "SELECT status, retries FROM job WHERE job_id = ?", (job_id,)
        ).one()
        conn.exec_driver_sql(
            "UPDATE worker SET last_seen = ? WHERE worker_id = ?", (now, worker_id)
        )
        _take_acks(ctx, conn, job_id, worker_id, acks, retries=retries, now=now)
        if release:
            queue.release(conn, job_id, worker_id, release)
        if status != JobStatus.RUNNING:
            return {"task": "exit", "reason": f"the job is {status}"}
        if body.get("stopping"):
            return {"task": "exit", "reason": "the worker is stopping"}
        if want == 0:
            return {"task": "batches", "batches": []}
        leases = queue.lease(
            conn,
            job_id,
            worker_id,
            now,
            ctx.settings.visibility_timeout_s,
            _fair_share(conn, job_id, want),
        )
        if leases:
            return {
                "task": "batches",
                # The stored JSON text goes out as-is, spliced in by the route.
                "batches": [
                    {
                        "batch_id": lease.batch_id,
                        "lease": ctx.credentials.lease_token(lease.batch_id, worker_id),
                        "index": lease.index,
                        "attempt": lease.attempts,
                        "payload_json": lease.payload,
                    }
                    for lease in leases
                ],
            }
        counts = read_counts(conn, job_id)
        if not counts.batches_done:
            return {"task": "wait", "delay_s": 0.2}
        if counts.hook_state == "none":
            conn.exec_driver_sql(
                "UPDATE job SET hook_state = 'claimed', hook_worker = ? WHERE job_id = ?",
                (worker_id, job_id),
            )
            return {
                "task": "on_job_complete",
                "job_summary": {
                    "job_id": job_id,
                    "succeeded": counts.succeeded,
                    "failed": counts.failed,
                    "total": counts.total,
                },
            }
        return {"task": "exit", "reason": "every batch has finished"}


def report_hook(ctx: Context, worker_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Record how ``on_job_complete`` went, and finish the job."""
    error = body.get("error")
    with ctx.store.write() as conn:
        job_id = _worker_job(conn, worker_id)
        conn.exec_driver_sql(
            "UPDATE job SET hook_state = ?, hook_error = ?"
            " WHERE job_id = ? AND hook_state = 'claimed' AND hook_worker = ?",
            ("failed" if error else "done", error, job_id, worker_id),
        )
        settle(ctx, conn, job_id)
    return {"ok": True}


def heartbeat(ctx: Context, worker_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Extend the leases the worker says it holds; tell it whether its job goes on."""
    batch_ids = _batch_ids(body, "batch_ids")
    now = ctx.clock()
    with ctx.store.write() as conn:
        job_id = _worker_job(conn, worker_id)
        conn.exec_driver_sql(
            "UPDATE worker SET last_seen = ? WHERE worker_id = ?", (now, worker_id)
        )
        held = queue.heartbeat(
            conn, job_id, worker_id, batch_ids, now, ctx.settings.visibility_timeout_s
        )
        status = conn.exec_driver_sql(
            "SELECT status FROM job WHERE job_id = ?", (job_id,)
        ).scalar_one()
    return {"held": held, "job_status": status}


def settle(ctx: Context, conn: Connection, job_id: str) -> JobStatus | None:
    """Give a running job its final status if every batch and the hook are done."""
    outcome = finished_status(read_counts(conn, job_id))
    if outcome is None:
        return None
    status, message = outcome
    return status if set_status(ctx, conn, job_id, status, message) else None


def _take_acks(
    ctx: Context,
    conn: Connection,
    job_id: str,
    worker_id: str,
    acks: list[Any],
    *,
    retries: int,
    now: float,
) -> None:
    """Record a worker's acks: successes together, failures one by one (they may retry).

    Every ack must carry the lease token of a batch handed to this worker; one that does
    not refuses the whole request (the transaction rolls back, so nothing changes).
    """
    successes: list[queue.Success] = []
    batch_ids = _leased_ids(ctx, worker_id, acks, "acks")
    for position, (ack, batch_id) in enumerate(zip(acks, batch_ids, strict=True)):
        where = f"acks[{position}]"
        duration = ack.get("duration") or 0.0
        if (
            isinstance(duration, bool)
            or not isinstance(duration, int | float)
            or not math.isfinite(duration)
            or duration < 0
        ):
            raise InvalidRequest(f"{where}.duration: must be a number of seconds")
        if ack.get("error") is None:
            result = ack.get("result")
            encoded = None if result is None else json.dumps(result)
            successes.append(queue.Success(batch_id, float(duration), encoded))
        else:
            queue.ack_failure(
                conn,
                job_id,
                batch_id,
                worker_id,
                str(ack["error"]),
                str(ack.get("traceback") or ""),
                retries,
                now,
            )
    queue.ack_successes(conn, job_id, successes, now)


def _fair_share(conn: Connection, job_id: str, want: int) -> int:
    """Cap a lease so that the queue's last batches spread over the job's live workers."""
    if want == 1:
        return 1
    queued, workers = conn.exec_driver_sql(
        "SELECT queued, (SELECT count(*) FROM worker WHERE job_id = ? AND state IN (?, ?, ?))"
        " FROM job WHERE job_id = ?",
        (job_id, WorkerState.PENDING, WorkerState.INITIALIZING, WorkerState.RUNNING, job_id),
    ).one()
    return max(1, min(want, math.ceil(int(queued) / max(1, int(workers)))))


def _list(body: dict[str, Any], key: str) -> list[Any]:
    value = body.get(key) or []
    if not isinstance(value, list):
        raise InvalidRequest(f"{key}: must be a list")
    if len(value) > _MAX_LIST:
        raise InvalidRequest(f"{key}: at most {_MAX_LIST} entries per request, got {len(value)}")
    return value


def _leased_ids(ctx: Context, worker_id: str, entries: list[Any], key: str) -> list[int]:
    """Return the batch ids of ``entries`` (``{"batch_id", "lease"}`` objects).

    Raises:
        InvalidRequest: An entry is not such an object.
        Forbidden: An entry's lease token is not that of a batch handed to ``worker_id``.
    """
    ids = []
    for position, entry in enumerate(entries):
        where = f"{key}[{position}]"
        if not isinstance(entry, dict):
            raise InvalidRequest(f"{where}: must be an object with batch_id and lease")
        batch_id = entry.get("batch_id")
        if not _is_int(batch_id):
            raise InvalidRequest(f"{where}.batch_id: must be an integer")
        if not ctx.credentials.is_lease(batch_id, worker_id, entry.get("lease")):
            raise Forbidden(
                f"{where}: batch {batch_id} was never leased to worker {short_name(worker_id)}"
            )
        ids.append(batch_id)
    return ids


def _batch_ids(body: dict[str, Any], key: str) -> list[int]:
    ids = _list(body, key)
    if not all(_is_int(b) for b in ids):
        raise InvalidRequest(f"{key}: must be a list of batch ids")
    return ids


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


def _worker_job(conn: Connection, worker_id: str) -> str:
    job_id = conn.exec_driver_sql(
        "SELECT job_id FROM worker WHERE worker_id = ?", (worker_id,)
    ).scalar()
    if job_id is None:
        raise NotFound(f'worker "{worker_id}" is unknown')
    return str(job_id)


def _job(session: Session, job_id: str) -> Job:
    return session.exec(select(Job).where(Job.job_id == job_id)).one()
