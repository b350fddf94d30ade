"""Worker records of a job: launching workers, stopping them, and recording how they end.

(The worker itself is ``runtime.worker.Worker``; the HTTP routes it calls are
``orchestrator.http.worker_protocol``; what they do is ``orchestrator.delivery.handlers``.)
"""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.aws import transport_description
from orchestrator.backends import WorkerLaunch, WorkerProbe
from orchestrator.context import Context
from orchestrator.errors import BackendError
from orchestrator.status import JobStatus, WorkerState
from orchestrator.store import job_queries, queue, remote_queries, worker_queries
from orchestrator.store.models import WorkerRecord
from runtime.protocol import (
    JOB_KEY_ENV,
    ORCHESTRATOR_WAIT_ENV,
    SERVER_CERT_ENV,
    SERVER_UID_ENV,
    WORKER_SECRET_ENV,
    EndReason,
)


def short_name(worker_id: str) -> str:
    """Return the name a worker goes by in logs and the UI (``w3``)."""
    return worker_id.rsplit("-", 1)[-1]


def launch(ctx: Context, job_id: str, slot: int) -> str:
    """Record and start a new worker serving ``slot``; return its id."""
    now = ctx.clock()
    with ctx.store.session() as session:
        job = job_queries.get(session, job_id)
        assert job is not None, job_id
        worker_id = worker_queries.add(session, job_id, slot, now)
    backend = ctx.backend(job.backend)
    launch_spec = WorkerLaunch(
        worker_id=worker_id,
        job_id=job_id,
        api_name=job.api_name,
        slot=slot,
        transport=_transport(ctx, job_id, backend.remote),
        project_dir=Path(job.project_dir),
        api_spec=job.api_spec,
        log_path=ctx.job_log_dir(job_id) / f"{short_name(worker_id)}.log",
        timeout_s=job.timeout,
        env={
            **{k: str(v) for k, v in (job.api_spec["predictor"].get("env") or {}).items()},
            WORKER_SECRET_ENV: ctx.credentials.worker_secret(worker_id),
            SERVER_UID_ENV: str(os.getuid()),
            ORCHESTRATOR_WAIT_ENV: f"{ctx.settings.orchestrator_wait_s:g}",
            "CORTEX_WORKER_ID": short_name(worker_id),
            "CORTEX_JOB_ID": job_id,
            "CORTEX_API_NAME": job.api_name,
            **_tls_env(ctx),
            **({JOB_KEY_ENV: ctx.credentials.job_key(job_id)} if backend.remote else {}),
        },
    )
    try:
        handle = {"backend": backend.name, **backend.start_worker(launch_spec)}
    except Exception as e:
        probe = WorkerProbe(alive=False, message=str(e))
        record_exit(ctx, job_id, worker_id, probe, EndReason.START_ERROR)
        raise
    with ctx.store.write() as conn:
        worker_queries.set_handle(conn, worker_id, handle, ctx.clock())
        status = job_queries.status_of(conn, job_id)
        ended = status is None or JobStatus(status).is_terminal
    ctx.log_event(
        job_id, f"started worker {short_name(worker_id)} (slot {slot}) {_describe(handle)}"
    )
    if ended:  # the job ended while this worker started, after stop_all looked for handles
        backend.stop_worker(handle, ctx.settings.stop_grace_s)
    return worker_id


def _transport(ctx: Context, job_id: str, remote: bool) -> str:
    """Return how the worker reaches the orchestrator: its URL, or the job's queues."""
    if not remote:
        return ctx.settings.url
    with ctx.store.read() as conn:
        queues = remote_queries.get(conn, job_id)
    if queues is None:
        raise BackendError(f"job {job_id} has no queues yet: its workers cannot start")
    return transport_description(queues, ctx.settings)


def _tls_env(ctx: Context) -> dict[str, str]:
    """Hand an HTTPS orchestrator's certificate to the worker, which trusts only it."""
    if not ctx.settings.tls_cert:
        return {}
    return {SERVER_CERT_ENV: Path(ctx.settings.tls_cert).read_text()}


def live_workers(ctx: Context, job_id: str) -> list[WorkerRecord]:
    """Return the job's workers that may still be running."""
    with ctx.store.read_session() as session:
        rows = worker_queries.of_job(session, job_id)
    return [w for w in rows if WorkerState(w.state).is_live]


def stop_all(ctx: Context, job_id: str) -> None:
    """Ask every live worker of a job to stop (SIGTERM, then SIGKILL after the grace)."""
    for worker in live_workers(ctx, job_id):
        if worker.handle:
            ctx.backend(worker.handle["backend"]).stop_worker(
                worker.handle, ctx.settings.stop_grace_s
            )


def record_exit(
    ctx: Context, job_id: str, worker_id: str, probe: WorkerProbe, reason: str | None = None
) -> None:
    """Mark a worker ended and put back the batches it held.

    A worker that said it was done and exited 0 succeeded; any other end is a
    failure whose reason (oom, a predictor load error, a crash, or being stopped
    with its job) is kept.
    """
    with ctx.store.write() as conn:
        state, known_reason, known_error = worker_queries.end_facts(conn, worker_id)
        if not WorkerState(state).is_live:
            return
        # Found dead after a restart (no exit code) counts as clean if it had said it was done.
        clean = known_reason == EndReason.DONE and probe.exit_code in (0, None)
        if probe.oom:
            reason, error = EndReason.OOM, f"worker {short_name(worker_id)} {probe.message}"
        elif clean:  # done, or (its job stopped or timed out) told to stop and did
            reason, error = EndReason.DONE, None
            if job_queries.status_of(conn, job_id) in _TOLD_TO_STOP:
                reason = EndReason.STOPPED
        else:
            reason = reason or known_reason or EndReason.CRASH
            error = known_error or probe.message or _exit_text(worker_id, probe.exit_code)
            job_status = job_queries.status_of(conn, job_id)
            if (
                reason == EndReason.CRASH
                and job_status is not None
                and JobStatus(job_status).is_terminal
            ):
                reason, error = EndReason.STOPPED, f"{error}, as the job ended ({job_status})"
        new_state = WorkerState.SUCCEEDED if clean else WorkerState.FAILED
        worker_queries.write_end(
            conn, worker_id, new_state, reason, error, probe.exit_code, ctx.clock()
        )
        returned = queue.release_worker(conn, job_id, worker_id)
        job_queries.unclaim_hook(conn, job_id, worker_id)
    text = f"worker {short_name(worker_id)} {new_state.value}"
    if error:
        text += f": {error}"
    if returned:
        text += f"; {returned} batch(es) it held went back to the queue"
    ctx.log_event(job_id, text)


#: A job ending so tells its workers to stop: one that then exits cleanly was stopped.
_TOLD_TO_STOP = (JobStatus.STOPPED, JobStatus.TIMED_OUT)


def _exit_text(worker_id: str, code: int | None) -> str:
    name = short_name(worker_id)
    if code is None:
        return f"worker {name} disappeared (its process is gone and left no exit code)"
    if code < 0:
        return f"worker {name} was killed by signal {-code}"
    return f"worker {name} exited with code {code}"


def _describe(handle: dict[str, object]) -> str:
    return "(" + ", ".join(f"{k}={v}" for k, v in handle.items() if v not in (None, "")) + ")"
