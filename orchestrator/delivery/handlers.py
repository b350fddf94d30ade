"""What a worker's calls do: its spec, state reports, lease-and-ack, heartbeats, the hook.

The routes (``orchestrator.http.worker_protocol``) have already checked that the caller
holds the worker's own secret. Each request is validated whole before anything is
written, and every batch an ack, failure or release names must come with the lease token
it was handed with (``orchestrator.auth``): a worker can settle only its own batches.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from sqlalchemy.engine import Connection

from orchestrator.context import Context
from orchestrator.delivery.gpu_reports import parse_gpus
from orchestrator.errors import Forbidden, InvalidRequest, NotFound
from orchestrator.jobs.control import fail_job, submission_view
from orchestrator.jobs.lifecycle import read_counts, settle
from orchestrator.jobs.worker_records import short_name
from orchestrator.status import BatchState, JobStatus, WorkerState
from orchestrator.store import job_queries, queue, worker_queries
from orchestrator.store.models import Job
from runtime.protocol import GPUS_FIELD, MAX_LEASE, MAX_LIST, EndReason, HookState, Report, Task

Json = dict[str, Any]
#: How long a worker waits when other workers hold the last batches.
WAIT_S = 0.2


def worker_spec(ctx: Context, worker_id: str) -> Json:
    """Return what a worker needs to load its predictor and run its job."""
    with ctx.store.read_session() as session:
        worker = worker_queries.get(session, worker_id)
        job = None if worker is None else job_queries.get(session, worker.job_id)
    if job is None:
        raise NotFound(f'worker "{worker_id}" is unknown')
    return {"worker_id": worker_id, "worker_name": short_name(worker_id), **job_spec(ctx, job)}


def job_spec(ctx: Context, job: Job) -> Json:
    """Return what every worker of a job needs (a queue transport keeps it in ``spec.json``)."""
    predictor = job.api_spec["predictor"]
    return {
        "job_id": job.job_id,
        "api_name": job.api_name,
        "predictor": {"path": predictor["path"], "python_path": predictor.get("python_path")},
        "config": job.config,
        "job_spec": {**submission_view(ctx, job), "timeout": job.timeout, "source": job.source},
        "heartbeat_interval_s": ctx.settings.heartbeat_interval_s,
        "prefetch_window_s": ctx.settings.prefetch_window_s,
        # Each worker's GPUs (compute.gpu): a worker holding some samples them.
        GPUS_FIELD: int(job.api_spec.get("compute", {}).get("gpu") or 0),
    }


def report_state(ctx: Context, worker_id: str, body: Json) -> Json:
    """Record a worker's own report: initializing, running, failed (with why), or done."""
    try:
        state = Report(str(body.get("state")))
    except ValueError:
        allowed = ", ".join(Report)
        raise InvalidRequest(
            f"state: must be one of {allowed}, got {body.get('state')!r}"
        ) from None
    error = body.get("error")
    now = ctx.clock()
    with ctx.store.write() as conn:
        job_id = _worker_job(conn, worker_id)
        if state in (Report.INITIALIZING, Report.RUNNING):
            worker_queries.advance(conn, worker_id, WorkerState(state.value), now)
        else:
            reason = EndReason.DONE if state is Report.DONE else _end_reason(body)
            worker_queries.note_end(conn, worker_id, reason, error, now)
    if state is Report.FAILED:
        ctx.log_event(job_id, f"worker {short_name(worker_id)} reports: {error}")
        if _end_reason(body).is_fatal:
            fail_job(ctx, job_id, JobStatus.WORKER_ERROR, str(error))
    return {"ok": True}


@dataclass(frozen=True)
class NextRequest:
    """A validated ``next`` request: acks to record, batches handed back, how many more."""

    successes: list[queue.Success] = field(default_factory=list)
    failures: list[queue.Failure] = field(default_factory=list)
    release: list[int] = field(default_factory=list)
    want: int = 1
    stopping: bool = False


def next_task(ctx: Context, worker_id: str, body: Json) -> Json:
    """Take the worker's acks (and, when it stops, its unstarted batches); hand out work.

    Tasks: ``batches`` (up to ``want`` of them, fewer near the end of the queue so
    that the last batches spread over every worker); ``wait`` while other workers
    still hold the last batches; ``on_job_complete`` for exactly one worker once
    every batch has finished; ``exit`` when there is nothing more for this worker, or
    when its job (or its record) no longer exists: purged while the worker stopped.
    """
    request = parse_next(ctx, worker_id, body)
    now = ctx.clock()
    with _observed_once_committed(ctx) as observe, ctx.store.write() as conn:
        job_id = worker_queries.job_of(conn, worker_id)
        job = None if job_id is None else job_queries.status_and_retries(conn, job_id)
        if job_id is None or job is None:  # purged while the worker was stopping
            return {"task": Task.EXIT, "reason": "the job no longer exists"}
        status, retries = job
        worker_queries.touch(conn, worker_id, now)
        _record(conn, job_id, worker_id, request, retries, now, observe)
        if status != JobStatus.RUNNING:
            return {"task": Task.EXIT, "reason": f"the job is {status}"}
        if request.stopping:
            return {"task": Task.EXIT, "reason": "the worker is stopping"}
        if request.want == 0:
            return {"task": Task.BATCHES, "batches": []}
        leases = _lease(ctx, conn, job_id, worker_id, request.want, now)
        if leases:
            return {"task": Task.BATCHES, "batches": leases}
        return _after_the_last_lease(conn, job_id, worker_id)


def parse_next(ctx: Context, worker_id: str, body: Json) -> NextRequest:
    """Validate a ``next`` request whole; raise 400 naming the field, or 403 for a forgery."""
    want = body.get("want", 1)
    if isinstance(want, bool) or not isinstance(want, int) or not 0 <= want <= MAX_LEASE:
        raise InvalidRequest(f"want: must be an integer from 0 to {MAX_LEASE}, got {want!r}")
    acks = _list(body, "acks")
    successes, failures = [], []
    for position, (ack, batch_id) in enumerate(
        zip(acks, _leased_ids(ctx, worker_id, acks, "acks"), strict=True)
    ):
        duration = _duration(ack.get("duration"), f"acks[{position}].duration")
        if ack.get("error") is None:
            result = ack.get("result")
            encoded = None if result is None else json.dumps(result)
            successes.append(queue.Success(batch_id, duration, encoded))
        else:
            trace = str(ack.get("traceback") or "")
            failures.append(queue.Failure(batch_id, str(ack["error"]), trace, duration))
    release = _leased_ids(ctx, worker_id, _list(body, "release"), "release")
    return NextRequest(successes, failures, release, want, bool(body.get("stopping")))


def report_hook(ctx: Context, worker_id: str, body: Json) -> Json:
    """Record how ``on_job_complete`` went, and finish the job."""
    error = body.get("error")
    with ctx.store.write() as conn:
        job_id = _worker_job(conn, worker_id)
        if job_queries.status_of(conn, job_id) is None:
            return {"ok": True}  # the job was purged: nothing is left to finish
        job_queries.finish_hook(conn, job_id, worker_id, None if error is None else str(error))
        settle(ctx, conn, job_id)
    return {"ok": True}


def heartbeat(ctx: Context, worker_id: str, body: Json) -> Json:
    """Extend the leases the worker says it holds, keep its GPUs' latest samples; tell it
    whether its job goes on."""
    batch_ids = _batch_ids(body, "batch_ids")
    try:
        gpus, dropped = parse_gpus(body), None
    except InvalidRequest as e:  # samples are a nicety: the leases must still be kept
        gpus, dropped = None, e.message
    now = ctx.clock()
    with ctx.store.write() as conn:
        job_id = _worker_job(conn, worker_id)
        worker_queries.touch(conn, worker_id, now)
        if gpus is not None:
            worker_queries.set_gpus(conn, worker_id, gpus, now)
        visibility = ctx.settings.visibility_timeout_s
        held = queue.heartbeat(conn, job_id, worker_id, batch_ids, now, visibility)
        status = job_queries.status_of(conn, job_id)
    answer: Json = {"held": held, "job_status": status}
    if dropped is not None:
        ctx.log_event(job_id, f"worker {short_name(worker_id)}'s GPU samples dropped: {dropped}")
        answer["gpus_dropped"] = dropped  # said, not a 400: the leases had to be kept
    return answer


@dataclass
class RemoteNext:
    """A validated ``next`` event of a queue transport: leases received, acks, releases.

    Each entry names the attempt of the message it came with, so reports about a batch's
    older message are told apart from its current one (fenced).
    """

    leases: list[tuple[int, int]] = field(default_factory=list)
    successes: list[queue.Success] = field(default_factory=list)
    failures: list[tuple[queue.Failure, int]] = field(default_factory=list)
    release: list[tuple[int, int]] = field(default_factory=list)

    def attempts(self) -> list[tuple[int, int]]:
        """Return every ``(batch_id, attempt)`` a lease, failure or release names."""
        return [*self.leases, *((f.batch_id, a) for f, a in self.failures), *self.release]

    def batch_ids(self) -> list[int]:
        """Return every batch the event names."""
        return [b for b, _ in self.attempts()] + [s.batch_id for s in self.successes]


class NotYet(Exception):
    """An event names an attempt whose publication is not recorded yet: it comes back soon."""


def record_remote_next(ctx: Context, worker_id: str, body: Json) -> None:
    """Record a queue-transport worker's leases, acks and releases in one transaction.

    A lease, failure or release counts only for a batch's current message (``Message``);
    a success counts once however late it comes. A failed batch with retries left gets a
    new message (its old one was deleted). Leases reported by a worker already recorded
    as ended are not taken: its batches went back to the queue when its end was seen,
    and their messages come back to the others.

    Raises:
        NotYet: The event names an attempt newer than the store knows of (its message was
            sent a moment ago and is being recorded): nothing is written.
    """
    event = parse_remote_next(body)
    now = ctx.clock()
    with _observed_once_committed(ctx) as observe, ctx.store.write() as conn:
        job_id = _worker_job(conn, worker_id)
        job = job_queries.status_and_retries(conn, job_id)
        if job is None:
            return  # the job was purged: nothing is left to record to
        _, retries = job
        messages = queue.messages_of(conn, event.batch_ids())
        if any(attempt > m.attempt for b, attempt in event.attempts() if (m := messages.get(b))):
            raise NotYet(f"an event of worker {short_name(worker_id)} names a newer attempt")

        def current(batch_id: int, attempt: int) -> bool:
            return batch_id in messages and messages[batch_id].is_current(attempt)

        worker_queries.touch(conn, worker_id, now)
        state, _, _ = worker_queries.end_facts(conn, worker_id)
        if WorkerState(state).is_live:
            leased = [b for b, attempt in event.leases if current(b, attempt)]
            queue.record_leases(conn, job_id, worker_id, leased, now)
        failed = list({f.batch_id: (f, a) for f, a in event.failures}.values())
        for failure, attempt in failed:
            if not current(failure.batch_id, attempt):
                continue
            state = queue.ack_failure(conn, job_id, failure, worker_id, retries, now, observe)
            if state == BatchState.QUEUED:
                queue.republish(conn, failure.batch_id)
        queue.ack_successes(conn, job_id, event.successes, now, observe)
        released = [b for b, attempt in event.release if current(b, attempt)]
        queue.release(conn, job_id, worker_id, released)


def parse_remote_next(body: Json) -> RemoteNext:
    """Validate a queue transport's ``next`` event whole; raise 400 naming the field."""
    event = RemoteNext()
    for position, lease in enumerate(_list(body, "leases")):
        event.leases.append(_batch_and_attempt(lease, f"leases[{position}]"))
    for position, ack in enumerate(_list(body, "acks")):
        where = f"acks[{position}]"
        batch_id, attempt = _batch_and_attempt(ack, where)
        duration = _duration(ack.get("duration"), f"{where}.duration")
        if ack.get("error") is None:
            result = ack.get("result")
            encoded = None if result is None else json.dumps(result)
            event.successes.append(queue.Success(batch_id, duration, encoded))
        else:
            trace = str(ack.get("traceback") or "")
            failure = queue.Failure(batch_id, str(ack["error"]), trace, duration)
            event.failures.append((failure, attempt))
    for position, entry in enumerate(_list(body, "release")):
        event.release.append(_batch_and_attempt(entry, f"release[{position}]"))
    return event


def record_remote_hook(ctx: Context, worker_id: str, body: Json) -> Json:
    """Record how a queue-transport worker's ``on_job_complete`` went (it took the message)."""
    with ctx.store.write() as conn:
        job_id = _worker_job(conn, worker_id)
        gone = job_queries.status_of(conn, job_id) is None  # purged: report_hook says ok
        if not gone and read_counts(conn, job_id).hook_state is HookState.NONE:
            job_queries.claim_hook(conn, job_id, worker_id)
    return report_hook(ctx, worker_id, body)


def record_remote_gpus(ctx: Context, worker_id: str, body: Json) -> Json:
    """Keep the latest samples of a queue-transport worker's GPUs (its heartbeat's, sent as
    an event of their own)."""
    gpus = parse_gpus(body) or []
    with ctx.store.write() as conn:
        _worker_job(conn, worker_id)
        worker_queries.set_gpus(conn, worker_id, gpus, ctx.clock())
    return {"ok": True}


def _batch_and_attempt(entry: object, where: str) -> tuple[int, int]:
    if not isinstance(entry, dict):
        raise InvalidRequest(f"{where}: must be an object with batch_id and attempt")
    batch_id, attempt = entry.get("batch_id"), entry.get("attempt")
    if not _is_int(batch_id) or not _is_int(attempt):
        raise InvalidRequest(f"{where}: batch_id and attempt must be integers")
    return batch_id, attempt


def _record(
    conn: Connection,
    job_id: str,
    worker_id: str,
    request: NextRequest,
    retries: int,
    now: float,
    observe: queue.AckObserver,
) -> None:
    """Record the acks (failures one by one: they may retry) and put back the releases."""
    for failure in request.failures:
        queue.ack_failure(conn, job_id, failure, worker_id, retries, now, observe)
    queue.ack_successes(conn, job_id, request.successes, now, observe)
    if request.release:
        queue.release(conn, job_id, worker_id, request.release)


def _lease(
    ctx: Context, conn: Connection, job_id: str, worker_id: str, want: int, now: float
) -> list[Json]:
    """Lease up to ``want`` batches (within the job's fair share), each with its token."""
    visibility = ctx.settings.visibility_timeout_s
    leases = queue.lease(conn, job_id, worker_id, now, visibility, _fair_share(conn, job_id, want))
    return [
        {
            "batch_id": lease.batch_id,
            "lease": ctx.credentials.lease_token(lease.batch_id, worker_id),
            "index": lease.index,
            "attempt": lease.attempts,
            # The stored JSON text goes out as-is, spliced in by the route.
            "payload_json": lease.payload,
        }
        for lease in leases
    ]


def _after_the_last_lease(conn: Connection, job_id: str, worker_id: str) -> Json:
    """With nothing left to lease: wait for the others, run the hook once, or exit."""
    counts = read_counts(conn, job_id)
    if not counts.batches_done:
        return {"task": Task.WAIT, "delay_s": WAIT_S}
    if counts.hook_state is HookState.NONE:
        job_queries.claim_hook(conn, job_id, worker_id)
        summary = {
            "job_id": job_id,
            "succeeded": counts.succeeded,
            "failed": counts.failed,
            "total": counts.total,
        }
        return {"task": Task.ON_JOB_COMPLETE, "job_summary": summary}
    return {"task": Task.EXIT, "reason": "every batch has finished"}


def _fair_share(conn: Connection, job_id: str, want: int) -> int:
    """Cap a lease so that the queue's last batches spread over the job's live workers."""
    if want == 1:
        return 1
    queued, workers = queue.queued_and_live_workers(conn, job_id)
    return max(1, min(want, math.ceil(queued / max(1, workers))))


def _end_reason(body: Json) -> EndReason:
    """Return the end reason a failing worker gives (``crash`` when it gives none we know)."""
    try:
        return EndReason(body.get("reason") or EndReason.CRASH)
    except ValueError:
        return EndReason.CRASH


def _duration(value: object, where: str) -> float:
    value = value or 0.0
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise InvalidRequest(f"{where}: must be a number of seconds")
    return float(value)


def _list(body: Json, key: str) -> list[Any]:
    value = body.get(key) or []
    if not isinstance(value, list):
        raise InvalidRequest(f"{key}: must be a list")
    if len(value) > MAX_LIST:
        raise InvalidRequest(f"{key}: at most {MAX_LIST} entries per request, got {len(value)}")
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


def _batch_ids(body: Json, key: str) -> list[int]:
    ids = _list(body, key)
    if not all(_is_int(b) for b in ids):
        raise InvalidRequest(f"{key}: must be a list of batch ids")
    return ids


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


def _worker_job(conn: Connection, worker_id: str) -> str:
    job_id = worker_queries.job_of(conn, worker_id)
    if job_id is None:
        raise NotFound(f'worker "{worker_id}" is unknown')
    return job_id


@contextlib.contextmanager
def _observed_once_committed(ctx: Context) -> Iterator[queue.AckObserver]:
    """Yield an observer of the acks a write counts; they reach the metrics only once the
    write committed (a write rolled back and done again must not count them twice)."""
    seen: list[tuple[str, float | None, float]] = []
    yield lambda outcome, lease_to_ack_s, predict_s: seen.append(
        (outcome, lease_to_ack_s, predict_s)
    )
    for outcome, lease_to_ack_s, predict_s in seen:
        ctx.telemetry.observe_ack(outcome, lease_to_ack_s, predict_s)
