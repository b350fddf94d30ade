"""Job status: the transition guard and the rules that derive a status from the store."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Connection

from orchestrator.context import Context
from orchestrator.status import JobStatus, can_transition
from orchestrator.store import job_queries, worker_queries
from runtime.protocol import HookState


def set_status(
    ctx: Context, conn: Connection, job_id: str, new: JobStatus, message: str | None = None
) -> bool:
    """Move a job to ``new`` if the transition table allows it; return whether it moved.

    Terminal statuses stick: a stopped job never becomes succeeded.
    """
    current = job_queries.status_of(conn, job_id)
    if current is None or not can_transition(JobStatus(current), new):
        return False
    job_queries.write_status(conn, job_id, new, message, ctx.clock() if new.is_terminal else None)
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
    hook_state: HookState
    hook_error: str | None
    live_workers: int

    @property
    def batches_done(self) -> bool:
        """Return whether every batch has finished, one way or the other."""
        return self.queued == 0 and self.leased == 0 and self.succeeded + self.failed == self.total


def read_counts(conn: Connection, job_id: str) -> JobCounts:
    """Read a job's counters and its number of live workers."""
    total, queued, leased, succeeded, failed, hook, hook_error = job_queries.counters(conn, job_id)
    live = worker_queries.live_count(conn, job_id)
    return JobCounts(total, queued, leased, succeeded, failed, HookState(hook), hook_error, live)


def finished_status(counts: JobCounts) -> tuple[JobStatus, str | None] | None:
    """Return the final status of a job whose batches and hook are all done, else None."""
    if not counts.batches_done or counts.hook_state not in (HookState.DONE, HookState.FAILED):
        return None
    if counts.hook_state is HookState.FAILED:
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


def settle(ctx: Context, conn: Connection, job_id: str) -> JobStatus | None:
    """Give a running job its final status if every batch and the hook are done."""
    outcome = finished_status(read_counts(conn, job_id))
    if outcome is None:
        return None
    status, message = outcome
    return status if set_status(ctx, conn, job_id, status, message) else None
