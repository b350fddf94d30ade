"""Job status: the transition guard and the rules that derive a status from the store."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Connection

from orchestrator.context import Context
from orchestrator.status import JobStatus, WorkerState, can_transition


def set_status(
    ctx: Context, conn: Connection, job_id: str, new: JobStatus, message: str | None = None
) -> bool:
    """Move a job to ``new`` if the transition table allows it; return whether it moved.

    Terminal statuses stick: a stopped job never becomes succeeded.
    """
    current = conn.exec_driver_sql("SELECT status FROM job WHERE job_id = ?", (job_id,)).scalar()
    if current is None or not can_transition(JobStatus(current), new):
        return False
    now = ctx.clock()
    if new.is_terminal:
        conn.exec_driver_sql(
            "UPDATE job SET status = ?, message = ?, end_time = ? WHERE job_id = ?",
            (new.value, message, now, job_id),
        )
    else:
        conn.exec_driver_sql(
            "UPDATE job SET status = ?, message = ? WHERE job_id = ?",
            (new.value, message, job_id),
        )
    ctx.log_event(job_id, f"job {new.value}" + (f": {message}" if message else ""))
    return True


@dataclass(frozen=True)
class JobCounts:
    """The counters a running job's status is derived from."""

    total: int
    queued: int
    leased: int
    succeeded: int
    failed: int
    hook_state: str
    hook_error: str | None
    live_workers: int

    @property
    def batches_done(self) -> bool:
        """Return whether every batch has finished, one way or the other."""
        return self.queued == 0 and self.leased == 0 and self.succeeded + self.failed == self.total


def read_counts(conn: Connection, job_id: str) -> JobCounts:
    """Read a job's counters and its number of live workers."""
    row = conn.exec_driver_sql(
        "SELECT total, queued, leased, succeeded, failed, hook_state, hook_error"
        " FROM job WHERE job_id = ?",
        (job_id,),
    ).one()
    live = conn.exec_driver_sql(
        "SELECT count(*) FROM worker WHERE job_id = ? AND state IN (?, ?, ?)",
        (job_id, WorkerState.PENDING, WorkerState.INITIALIZING, WorkerState.RUNNING),
    ).scalar_one()
    total, queued, leased, succeeded, failed, hook_state, hook_error = row
    return JobCounts(total, queued, leased, succeeded, failed, hook_state, hook_error, live)


def finished_status(counts: JobCounts) -> tuple[JobStatus, str | None] | None:
    """Return the final status of a job whose batches and hook are all done, else None."""
    if not counts.batches_done or counts.hook_state not in ("done", "failed"):
        return None
    if counts.hook_state == "failed":
        return (
            JobStatus.COMPLETED_WITH_FAILURES,
            f"{counts.succeeded} of {counts.total} batches succeeded, {counts.failed} failed;"
            f" on_job_complete raised: {counts.hook_error}",
        )
    if counts.failed:
        return (
            JobStatus.COMPLETED_WITH_FAILURES,
            f"{counts.failed} of {counts.total} batches failed after their retries"
            "; see the failed-batch ledger",
        )
    return JobStatus.SUCCEEDED, None
