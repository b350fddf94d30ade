"""The supervisor: one thread that reconciles jobs with their workers.

Each tick, for every running job: end it if it timed out, put back expired
leases, reap workers that ended, settle a job whose work is done, and start
workers (the first ones, and replacements for dead ones up to the job's bound).
It is the only place that launches workers, so starts never race.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from orchestrator.aws import AwsUnreachable
from orchestrator.backends import WorkerProbe
from orchestrator.context import Context
from orchestrator.delivery.sqs import SqsDelivery, ended_with_open_queues
from orchestrator.errors import BackendError, InvalidRequest, OrchestratorError, WorkerStartError
from orchestrator.jobs import worker_records
from orchestrator.jobs.control import fail_job, start_enqueue
from orchestrator.jobs.lifecycle import JobCounts, read_counts, settle
from orchestrator.status import JobStatus, WorkerState
from orchestrator.store import job_queries, queue, remote_queries, worker_queries
from orchestrator.store.models import Job, WorkerRecord
from runtime.protocol import EndReason, HookState

log = logging.getLogger(__name__)


class Supervisor:
    """Runs ``tick()`` on a thread until stopped."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)

    def start(self) -> None:
        """Recover what a previous run left, then start ticking."""
        recover(self.ctx)
        self._thread.start()

    def stop(self) -> None:
        """Stop ticking and wait for the thread (and the queue transport's drains)."""
        self._stop.set()
        self.ctx.wake()
        self._thread.join(timeout=10)
        if self.ctx.remote is not None:
            self.ctx.remote.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                tick(self.ctx)
            except Exception:  # keep supervising; the traceback goes to the server log
                log.exception("supervisor tick failed")
            self.ctx.nudge.wait(self.ctx.settings.tick_s)
            self.ctx.nudge.clear()


def recover(ctx: Context) -> None:
    """Pick up after a restart: resume enqueuing, and give live workers' leases a grace."""
    with ctx.store.read() as conn:
        enqueuing = job_queries.ids_with_status(conn, JobStatus.ENQUEUING)
    for job_id in enqueuing:
        ctx.log_event(job_id, "orchestrator restarted: resuming enqueuing")
        start_enqueue(ctx, job_id)
    _discard_orphans(ctx)
    grace = ctx.clock() + ctx.settings.visibility_timeout_s
    with ctx.store.write() as conn:
        queue.extend_running_leases(conn, grace)


def _discard_orphans(ctx: Context) -> None:
    """Settle workers whose start a crash interrupted.

    A worker row with no handle never got its start recorded: it is marked failed
    (so the job replaces it), and whatever a backend still runs for this home that
    no recorded worker owns is removed.
    """
    with ctx.store.read_session() as session:
        live = worker_queries.live(session)
        backends = job_queries.backends_in_use(session)
    with ctx.store.read() as conn:
        if remote_queries.any_opened(conn):  # this home has run aws jobs: sweep there too
            backends.add("aws")
    for worker in live:
        if not worker.handle:
            message = "its start was cut short by an orchestrator restart"
            worker_records.record_exit(
                ctx, worker.job_id, worker.worker_id, WorkerProbe(False, message=message)
            )
    owned = {w.worker_id for w in live if w.handle}
    for name in sorted(backends):
        backend = ctx.backend(name)
        for handle in backend.find_leftovers():
            if handle.get("worker_id") not in owned:
                log.warning("removing leftover worker %s", handle)
                backend.discard_worker(handle)
        remote = _remote(ctx, name)
        if remote is not None:
            for url in remote.remove_orphans():
                log.warning("removed the leftover queue %s", url)


def tick(ctx: Context) -> None:
    """Reconcile every running job once, time out enqueuing ones, reap workers of ended jobs."""
    with ctx.store.read_session() as session:
        active = job_queries.in_progress(session)
        lingering = worker_queries.live_of_ended_jobs(session)
    for worker in lingering:
        _isolated(f"probing worker {worker.worker_id}", _probe, ctx, worker)
    for gone in set(ctx.waiting_for_cap) - {job.job_id for job in active}:
        ctx.waiting_for_cap.pop(gone, None)
    for job in active:
        if job.status == JobStatus.RUNNING:
            _isolated(f"reconciling job {job.job_id}", reconcile, ctx, job)
        else:  # a job's timeout counts from submission, enqueuing included
            _isolated(f"timing out job {job.job_id}", _time_out, ctx, job)
    _isolated("closing ended jobs' queues", _close_ended_queues, ctx)


def _isolated(what: str, step: Callable[..., object], *args: Any) -> None:
    """Run one job's (or worker's) step; a failure (AWS unreachable, say) is logged and
    tried again next tick, without holding up the others. The same failure is logged once
    a minute, not on every tick."""
    try:
        step(*args)
    except OrchestratorError as e:
        if _first_in_a_while(f"{what}: {e.message}"):
            log.warning("%s: %s (trying again every tick)", what, e.message)
    except Exception as e:
        if _first_in_a_while(f"{what}: {e!r}"):
            log.exception("%s failed (trying again every tick)", what)


_LOGGED: dict[str, float] = {}


def _first_in_a_while(message: str, every_s: float = 60.0) -> bool:
    """Return whether ``message`` was not logged in the last ``every_s`` seconds."""
    now = time.monotonic()
    if now - _LOGGED.get(message, -every_s) < every_s:
        return False
    _LOGGED[message] = now
    if len(_LOGGED) > 1000:
        _LOGGED.clear()
    return True


def reconcile(ctx: Context, job: Job) -> None:
    """Bring one running job's workers and status in line with the store."""
    if _time_out(ctx, job):
        return
    remote = _remote(ctx, job.backend)
    if remote is not None and not _sync_queues(ctx, remote, job):
        return
    now = ctx.clock()
    for worker in worker_records.live_workers(ctx, job.job_id):
        _probe(ctx, worker)
    with ctx.store.write() as conn:
        if remote is None:  # a queue transport's messages come back by themselves
            queue.expire_leases(conn, job.job_id, now)
        if settle(ctx, conn, job.job_id) is not None:
            return
        counts = read_counts(conn, job.job_id)
        launched = worker_queries.launched(conn, job.job_id)
        status = job_queries.status_of(conn, job.job_id)
    if status != JobStatus.RUNNING:
        return
    _staff(ctx, job, counts, launched)


def _remote(ctx: Context, backend: str) -> SqsDelivery | None:
    """Return the queue transport's delivery for a remote backend's job, else None."""
    if not ctx.backend(backend).remote:
        return None
    if ctx.remote is None:
        ctx.remote = SqsDelivery(ctx)
    return ctx.remote  # type: ignore[no-any-return]


def _sync_queues(ctx: Context, remote: SqsDelivery, job: Job) -> bool:
    """Open, drain, publish and hook a remote job's queues; return whether to go on.

    What the user must fix (credentials, missing resources) ends the job saying so; a
    passing AWS failure is logged and tried again on the next tick, and so is an AWS that
    does not answer, for up to ``aws_unreachable_grace_s``.
    """
    try:
        remote.sync(job)
    except AwsUnreachable as e:  # waited out below, counted from the first call unanswered
        remote.unanswered(job.job_id, e.message)
    except InvalidRequest as e:
        fail_job(ctx, job.job_id, JobStatus.UNEXPECTED_ERROR, e.message)
        return False
    except OrchestratorError as e:
        log.warning("job %s: %s (trying again)", job.job_id, e.message)
        return False
    if (outage := remote.outage(job.job_id)) is not None:
        _wait_for_aws(ctx, job, *outage)
        return False
    return True


def _wait_for_aws(ctx: Context, job: Job, down_for: float, message: str) -> None:
    """Wait out an AWS that does not answer, or end the job once it has not for too long."""
    grace = ctx.settings.aws_unreachable_grace_s
    if down_for < grace:
        if _first_in_a_while(f"aws unreachable for job {job.job_id}"):
            log.warning("job %s: %s (trying again for up to %gs)", job.job_id, message, grace)
        return
    fail_job(
        ctx,
        job.job_id,
        JobStatus.UNEXPECTED_ERROR,
        f"{message}; AWS did not answer for {down_for:.0f}s, longer than"
        f" aws_unreachable_grace_s ({grace:g}s)",
    )


def _close_ended_queues(ctx: Context) -> None:
    """Tell ended remote jobs' workers to stop, and delete their queues once none is live."""
    ended = ended_with_open_queues(ctx)
    if not ended:
        return
    if ctx.remote is None:
        ctx.remote = SqsDelivery(ctx)
    for job_id, status, live in ended:
        try:
            ctx.remote.finish(job_id, status, live)
        except OrchestratorError as e:
            log.warning("closing the queues of job %s: %s", job_id, e.message)


def _time_out(ctx: Context, job: Job) -> bool:
    """End a job that ran past its timeout; return whether it did."""
    if job.timeout is None or ctx.clock() - job.created_time <= job.timeout:
        return False
    message = f"the job ran past its timeout of {job.timeout:g}s"
    if waiting := ctx.waiting_for_cap.get(job.job_id):
        message += (
            f"; {waiting} of its workers were still waiting for room under max_live_workers"
            f" ({ctx.settings.live_worker_cap})"
        )
    fail_job(ctx, job.job_id, JobStatus.TIMED_OUT, message)
    return True


def _staff(ctx: Context, job: Job, counts: JobCounts, launched: int) -> None:
    """Start workers while the job has work for more of them, within its restart bound."""
    first_wave = min(job.workers, job.total)
    if counts.batches_done:
        needed = 1 if counts.hook_state is HookState.NONE else 0
    else:
        needed = min(job.workers, counts.queued + counts.leased)
    missing = needed - counts.live_workers
    if missing <= 0:
        _wait_for_cap(ctx, job.job_id, 0)
        return
    restarts_used = max(0, launched - first_wave)
    budget = first_wave - launched if launched < first_wave else job.max_restarts - restarts_used
    if budget <= 0:
        _wait_for_cap(ctx, job.job_id, 0)
        if counts.live_workers == 0:
            _give_up(ctx, job)
        return
    wanted = min(missing, budget)
    with ctx.store.read() as conn:
        room = max(0, ctx.settings.live_worker_cap - worker_queries.live_everywhere(conn))
        taken = worker_queries.live_slots(conn, job.job_id)
    # over the cap: the rest wait as pending and start as others end
    _wait_for_cap(ctx, job.job_id, max(0, wanted - room))
    free = [slot for slot in range(job.workers) if slot not in taken]
    for slot in free[: min(wanted, room)]:
        try:
            worker_records.launch(ctx, job.job_id, slot)
        except WorkerStartError as e:
            fail_job(ctx, job.job_id, JobStatus.WORKER_ERROR, e.message)
            return
        except AwsUnreachable as e:  # an outage, not a setup to fix: tried again next tick
            if _first_in_a_while(f"launching for job {job.job_id}: {e.message}"):
                log.warning("job %s: %s (trying again every tick)", job.job_id, e.message)
            return
        except (BackendError, InvalidRequest) as e:  # the backend failed, or is set up wrong
            # (a passing AWS failure, AwsError, is tried again on the next tick instead)
            fail_job(ctx, job.job_id, JobStatus.UNEXPECTED_ERROR, e.message)
            return


def _wait_for_cap(ctx: Context, job_id: str, waiting: int) -> None:
    """Record how many of a job's workers wait for room under ``max_live_workers``.

    Status reads count these as pending from another thread, so the figure is replaced in
    one step, never cleared first and set again later.
    """
    if waiting:
        ctx.waiting_for_cap[job_id] = waiting
    else:
        ctx.waiting_for_cap.pop(job_id, None)


def _give_up(ctx: Context, job: Job) -> None:
    """End a job whose workers keep dying: OOM if the last one was killed for memory."""
    with ctx.store.read() as conn:
        last = worker_queries.last_failure(conn, job.job_id)
        failures = worker_queries.failures(conn, job.job_id)
    reason, error = last if last else (None, "no worker could be started")
    status = JobStatus.WORKER_OOM if reason == EndReason.OOM else JobStatus.WORKER_ERROR
    message = (
        f"{error} ({failures} worker failure(s); the job's limit of {job.max_restarts}"
        " worker restart(s) is spent, so it cannot make progress)"
    )
    fail_job(ctx, job.job_id, status, message)


def _probe(ctx: Context, worker: WorkerRecord) -> None:
    if not worker.handle:
        return
    probe = ctx.backend(worker.handle["backend"]).probe_worker(worker.handle)
    if probe.starting and worker.state == WorkerState.PENDING:
        with ctx.store.write() as conn:
            worker_queries.advance(conn, worker.worker_id, WorkerState.INITIALIZING, ctx.clock())
    if not probe.alive and not _awaits_last_events(ctx, worker, probe):
        worker_records.record_exit(ctx, worker.job_id, worker.worker_id, probe)


def _awaits_last_events(ctx: Context, worker: WorkerRecord, probe: WorkerProbe) -> bool:
    """Return whether a clean exit waits for the worker's ``done``, still on its way.

    A queue transport's events can arrive after the exit is seen; for up to
    ``aws_event_grace_s`` an exit 0 without its ``done`` waits, so it is not a crash.
    """
    if probe.exit_code != 0 or worker.reason == EndReason.DONE or probe.ended_at is None:
        return False
    return ctx.clock() - probe.ended_at < ctx.settings.aws_event_grace_s
