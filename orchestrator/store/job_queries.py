"""Statements on the ``job`` and ``jobsource`` tables (the lease queue's are in ``queue``).

Each takes the caller's connection or session, so it runs inside the caller's
transaction: a status and the counters it is derived from change together.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import JSON, func
from sqlalchemy.engine import Connection
from sqlalchemy.orm import defer
from sqlmodel import Session, select

from orchestrator.status import JobStatus
from orchestrator.store.models import Job, JobSource
from runtime.protocol import HookState

IN_PROGRESS = (JobStatus.ENQUEUING.value, JobStatus.RUNNING.value)
# Every column a job status shows (the job's API spec is not one of them).
_STATUS_COLUMNS = [c.name for c in Job.__table__.columns if c.name != "api_spec"]  # type: ignore[attr-defined]
_JSON_COLUMNS = [
    c.name
    for c in Job.__table__.columns  # type: ignore[attr-defined]
    if c.name in _STATUS_COLUMNS and isinstance(c.type, JSON)
]
# Lists never read these large columns.
_LIST_DEFERRED = (defer(Job.config), defer(Job.api_spec))  # type: ignore[arg-type]


def add(session: Session, job: Job, source_spec: dict[str, Any]) -> None:
    """Insert a new job with the source spec its enqueuing reads (and resumes from)."""
    session.add(job)
    session.add(JobSource(job_id=job.job_id, spec=json.dumps(source_spec)))
    session.commit()


def status_of(conn: Connection, job_id: str) -> str | None:
    """Return the job's status, or None if there is no such job."""
    status = conn.exec_driver_sql("SELECT status FROM job WHERE job_id = ?", (job_id,)).scalar()
    return None if status is None else str(status)


def status_and_retries(conn: Connection, job_id: str) -> tuple[str, int] | None:
    """Return the job's status and its retries per batch, or None if there is no such job."""
    row = conn.exec_driver_sql(
        "SELECT status, retries FROM job WHERE job_id = ?", (job_id,)
    ).first()
    return None if row is None else (str(row[0]), int(row[1]))


def write_status(
    conn: Connection, job_id: str, status: JobStatus, message: str | None, end_time: float | None
) -> None:
    """Set the job's status and message (and its end time, for a terminal status)."""
    if end_time is None:
        conn.exec_driver_sql(
            "UPDATE job SET status = ?, message = ? WHERE job_id = ?",
            (status.value, message, job_id),
        )
    else:
        conn.exec_driver_sql(
            "UPDATE job SET status = ?, message = ?, end_time = ? WHERE job_id = ?",
            (status.value, message, end_time, job_id),
        )


def counters(conn: Connection, job_id: str) -> tuple[Any, ...]:
    """Return ``total, queued, leased, succeeded, failed, hook_state, hook_error``."""
    return tuple(
        conn.exec_driver_sql(
            "SELECT total, queued, leased, succeeded, failed, hook_state, hook_error"
            " FROM job WHERE job_id = ?",
            (job_id,),
        ).one()
    )


def queue_counters(conn: Connection, job_id: str) -> dict[str, int] | None:
    """Return the job's queue counters (``queued, in_flight, succeeded, failed, total``)."""
    row = conn.exec_driver_sql(
        "SELECT queued, leased, succeeded, failed, total FROM job WHERE job_id = ?", (job_id,)
    ).first()
    if row is None:
        return None
    return dict(zip(("queued", "in_flight", "succeeded", "failed", "total"), row, strict=True))


def ids_with_status(conn: Connection, status: JobStatus) -> list[str]:
    """Return the ids of the jobs in ``status``."""
    rows = conn.exec_driver_sql("SELECT job_id FROM job WHERE status = ?", (status.value,))
    return [str(job_id) for job_id in rows.scalars()]


def ids_of_api(conn: Connection, api_name: str) -> list[str]:
    """Return the ids of an API's jobs."""
    rows = conn.exec_driver_sql("SELECT job_id FROM job WHERE api_name = ?", (api_name,))
    return [str(job_id) for job_id in rows.scalars()]


def enqueue_progress(conn: Connection, job_id: str) -> tuple[int, int, str] | None:
    """Return how many batches and items are enqueued, and the source spec; None when done."""
    row = conn.exec_driver_sql(
        "SELECT j.total, j.enqueued_items, s.spec FROM job j"
        " JOIN jobsource s ON s.job_id = j.job_id WHERE j.job_id = ?",
        (job_id,),
    ).first()
    return None if row is None else (int(row[0]), int(row[1]), str(row[2]))


def drop_source(conn: Connection, job_id: str) -> None:
    """Forget the job's source spec (enqueuing is over, one way or the other)."""
    conn.exec_driver_sql("DELETE FROM jobsource WHERE job_id = ?", (job_id,))


def claim_hook(conn: Connection, job_id: str, worker_id: str) -> None:
    """Give ``on_job_complete`` to ``worker_id``."""
    conn.exec_driver_sql(
        "UPDATE job SET hook_state = ?, hook_worker = ? WHERE job_id = ?",
        (HookState.CLAIMED, worker_id, job_id),
    )


def finish_hook(conn: Connection, job_id: str, worker_id: str, error: str | None) -> None:
    """Record how ``on_job_complete`` went, if ``worker_id`` still holds it."""
    conn.exec_driver_sql(
        "UPDATE job SET hook_state = ?, hook_error = ?"
        " WHERE job_id = ? AND hook_state = ? AND hook_worker = ?",
        (
            HookState.FAILED if error else HookState.DONE,
            error,
            job_id,
            HookState.CLAIMED,
            worker_id,
        ),
    )


def unclaim_hook(conn: Connection, job_id: str, worker_id: str) -> None:
    """Put ``on_job_complete`` back up for grabs if ``worker_id`` held it (it died)."""
    conn.exec_driver_sql(
        "UPDATE job SET hook_state = ?, hook_worker = NULL"
        " WHERE job_id = ? AND hook_state = ? AND hook_worker = ?",
        (HookState.NONE, job_id, HookState.CLAIMED, worker_id),
    )


def status_row(conn: Connection, api_name: str, job_id: str) -> Job | None:
    """Return the job's row without its API spec, in plain SQL (what every client polls)."""
    row = conn.exec_driver_sql(
        f"SELECT {', '.join(_STATUS_COLUMNS)} FROM job WHERE job_id = ? AND api_name = ?",
        (job_id, api_name),
    ).first()
    if row is None:
        return None
    fields = dict(row._mapping)
    for name in _JSON_COLUMNS:
        fields[name] = json.loads(fields[name])
    return Job.model_construct(**fields)


def get(session: Session, job_id: str) -> Job | None:
    """Return the job, or None."""
    return session.exec(select(Job).where(Job.job_id == job_id)).first()


def of_api(session: Session, api_name: str, job_id: str) -> Job | None:
    """Return an API's job, or None."""
    return session.exec(select(Job).where(Job.job_id == job_id, Job.api_name == api_name)).first()


def ids_starting(conn: Connection, api_name: str | None, prefix: str, limit: int) -> list[str]:
    """Return up to ``limit`` ids of the API's jobs (every API's, for ``None``) that start
    with ``prefix`` (hex), newest first (ids sort by submission time)."""
    of_api = "" if api_name is None else " AND api_name = ?"
    rows = conn.exec_driver_sql(
        f"SELECT job_id FROM job WHERE job_id >= ? AND job_id < ?{of_api}"
        " ORDER BY job_id DESC LIMIT ?",
        (prefix, prefix + "g", *([] if api_name is None else [api_name]), limit),
    ).all()
    return [str(row[0]) for row in rows]


def retries_of(conn: Connection, job_id: str) -> list[str]:
    """Return the ids of the job's retries, their retries and so on, oldest first."""
    rows = conn.exec_driver_sql(
        "WITH RECURSIVE tree(job_id) AS (SELECT job_id FROM job WHERE parent_job_id = ?"
        " UNION SELECT j.job_id FROM job j JOIN tree t ON j.parent_job_id = t.job_id)"
        " SELECT j.job_id FROM tree t JOIN job j ON j.job_id = t.job_id ORDER BY j.seq",
        (job_id,),
    ).all()
    return [str(row[0]) for row in rows]


def newest_of_api(session: Session, api_name: str, limit: int) -> list[Job]:
    """Return an API's jobs, newest first, without their config and API spec."""
    return list(
        session.exec(
            select(Job)
            .options(*_LIST_DEFERRED)
            .where(Job.api_name == api_name)
            .order_by(Job.seq.desc())  # type: ignore[union-attr]
            .limit(limit)
        ).all()
    )


def latest_per_api(session: Session) -> dict[str, Job]:
    """Return each API's newest job, without its config and API spec."""
    newest = select(func.max(Job.seq)).group_by(Job.api_name)
    rows = session.exec(select(Job).options(*_LIST_DEFERRED).where(Job.seq.in_(newest)))  # type: ignore[union-attr]
    return {job.api_name: job for job in rows.all()}


def in_progress_per_api(session: Session) -> dict[str, int]:
    """Return how many jobs each API has enqueuing or running."""
    rows = session.exec(
        select(Job.api_name, func.count())
        .where(Job.status.in_(IN_PROGRESS))  # type: ignore[attr-defined]
        .group_by(Job.api_name)
    ).all()
    return {str(name): int(count) for name, count in rows}


def in_progress(session: Session) -> list[Job]:
    """Return the jobs enqueuing or running."""
    return list(session.exec(select(Job).where(Job.status.in_(IN_PROGRESS))).all())  # type: ignore[attr-defined]


def backends_in_use(session: Session) -> set[str]:
    """Return the backends of the jobs enqueuing or running."""
    return set(session.exec(select(Job.backend).where(Job.status.in_(IN_PROGRESS))).all())  # type: ignore[attr-defined]
