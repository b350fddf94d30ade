"""Job and worker status codes, and the one table of legal job transitions."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    """A job's status; the values are the wire strings of the reference."""

    ENQUEUING = "status_enqueuing"
    RUNNING = "status_running"
    ENQUEUE_FAILED = "status_enqueue_failed"
    COMPLETED_WITH_FAILURES = "status_completed_with_failures"
    SUCCEEDED = "status_succeeded"
    UNEXPECTED_ERROR = "status_unexpected_error"
    WORKER_ERROR = "status_worker_error"
    WORKER_OOM = "status_worker_oom"
    TIMED_OUT = "status_timed_out"
    STOPPED = "status_stopped"

    @property
    def is_terminal(self) -> bool:
        """Return whether the status can never change again."""
        return self not in _ACTIVE


_ACTIVE = frozenset({JobStatus.ENQUEUING, JobStatus.RUNNING})
_ENDINGS = frozenset(JobStatus) - _ACTIVE

TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.ENQUEUING: frozenset({JobStatus.RUNNING, JobStatus.ENQUEUE_FAILED}) | _ENDINGS,
    JobStatus.RUNNING: _ENDINGS - {JobStatus.ENQUEUE_FAILED},
    **{status: frozenset() for status in _ENDINGS},
}


def can_transition(current: JobStatus, new: JobStatus) -> bool:
    """Return whether a job may move from ``current`` to ``new``."""
    return new in TRANSITIONS[current]


class WorkerState(StrEnum):
    """A worker's state, as counted in ``worker_stats``."""

    PENDING = "pending"
    INITIALIZING = "initializing"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def is_live(self) -> bool:
        """Return whether the worker may still take or hold batches."""
        return self in (WorkerState.PENDING, WorkerState.INITIALIZING, WorkerState.RUNNING)


class BatchState(StrEnum):
    """Where a batch is in delivery."""

    QUEUED = "queued"
    LEASED = "leased"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    #: Failed, then split in halves that run in its place (``orchestrator.store.isolation``).
    SPLIT = "split"
