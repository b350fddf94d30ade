"""Statements on ``remote_queues``: the SQS queues and bucket of jobs on a queue transport."""

from __future__ import annotations

from sqlalchemy.engine import Connection

from orchestrator.store.models import RemoteQueues


def add(conn: Connection, queues: RemoteQueues) -> None:
    """Record a job's queues (once; a second open of the same job keeps the first)."""
    conn.exec_driver_sql(
        "INSERT OR IGNORE INTO remote_queues"
        " (job_id, work_url, events_url, bucket, hook_published, closed)"
        " VALUES (?, ?, ?, ?, 0, 0)",
        (queues.job_id, queues.work_url, queues.events_url, queues.bucket),
    )


def get(conn: Connection, job_id: str) -> RemoteQueues | None:
    """Return a job's queues, or None before they were opened."""
    row = conn.exec_driver_sql(
        "SELECT job_id, work_url, events_url, bucket, hook_published, closed"
        " FROM remote_queues WHERE job_id = ?",
        (job_id,),
    ).one_or_none()
    if row is None:
        return None
    return RemoteQueues(
        job_id=row[0], work_url=row[1], events_url=row[2], bucket=row[3],
        hook_published=bool(row[4]), closed=bool(row[5]),
    )  # fmt: skip


def open_ones(conn: Connection) -> list[tuple[str, str | None]]:
    """Return ``(job_id, job status)`` of every job whose queues are not closed yet (the
    status is None for a job deleted with its API)."""
    rows = conn.exec_driver_sql(
        "SELECT q.job_id, j.status FROM remote_queues q LEFT JOIN job j ON j.job_id = q.job_id"
        " WHERE q.closed = 0"
    ).all()
    return [(str(row[0]), None if row[1] is None else str(row[1])) for row in rows]


def mark_hook_published(conn: Connection, job_id: str) -> None:
    """Record that the job's ``on_job_complete`` message is on its work queue."""
    conn.exec_driver_sql("UPDATE remote_queues SET hook_published = 1 WHERE job_id = ?", (job_id,))


def mark_closed(conn: Connection, job_id: str) -> None:
    """Record that the job's queues are deleted."""
    conn.exec_driver_sql("UPDATE remote_queues SET closed = 1 WHERE job_id = ?", (job_id,))


def all_urls(conn: Connection) -> set[str]:
    """Return the URL of every queue the store knows (open or closed)."""
    rows = conn.exec_driver_sql("SELECT work_url, events_url FROM remote_queues").all()
    return {str(url) for row in rows for url in row}


def any_opened(conn: Connection) -> bool:
    """Return whether any job of this home ever had queues."""
    return conn.exec_driver_sql("SELECT 1 FROM remote_queues LIMIT 1").first() is not None
