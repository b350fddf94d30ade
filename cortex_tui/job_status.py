"""A job's status as the clients read it: the statuses that end a job, and a typed view."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The statuses a job ends with (it never leaves them).
TERMINAL_STATUSES = frozenset(
    {
        "status_enqueue_failed",
        "status_completed_with_failures",
        "status_succeeded",
        "status_unexpected_error",
        "status_worker_error",
        "status_worker_oom",
        "status_timed_out",
        "status_stopped",
    }
)

#: The states a worker ends in (the rest of ``worker_stats`` are live).
ENDED_WORKER_STATES = frozenset({"succeeded", "failed"})


@dataclass(frozen=True)
class JobStatus:
    """Where a job stands: ``GET /<api>/<job_id>``'s ``job_status``, with its counts typed.

    Attributes:
        job_id: The job's full id.
        api_name: The API it was submitted to.
        status: The wire status, e.g. ``status_running`` (README, "Status and delivery").
        succeeded: Batches that succeeded.
        failed: Batches that failed after their retries.
        total: Batches in the job (so far, while it enqueues).
        message: Why it ended the way it did, when it says.
        raw: The whole document, for every other field.
    """

    job_id: str
    api_name: str
    status: str
    succeeded: int
    failed: int
    total: int
    message: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def of(cls, document: dict[str, Any]) -> JobStatus:
        """Return the typed view of a ``job_status`` document."""
        metrics = document.get("batch_metrics") or {}
        return cls(
            job_id=str(document.get("job_id")),
            api_name=str(document.get("api_name")),
            status=str(document.get("status")),
            succeeded=int(metrics.get("succeeded", 0)),
            failed=int(metrics.get("failed", 0)),
            total=int(metrics.get("total", 0)),
            message=document.get("message"),
            raw=document,
        )

    @property
    def done(self) -> bool:
        """Whether the job has ended (in any way)."""
        return self.status in TERMINAL_STATUSES

    @property
    def ok(self) -> bool:
        """Whether the job ended with every batch succeeded."""
        return self.status == "status_succeeded"
