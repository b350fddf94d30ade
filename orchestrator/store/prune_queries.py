"""Statements that measure what jobs hold and remove ended ones (deleting an API, prune).

A job is removable only once it ended, none of its workers is live and its remote queues
(aws) are closed: nothing can still write to it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy.engine import Connection

from orchestrator.store.job_queries import IN_PROGRESS
from orchestrator.store.worker_queries import LIVE

_CHUNK = 500
_IN_PROGRESS_MARKS = ",".join("?" * len(IN_PROGRESS))
_LIVE_MARKS = ",".join("?" * len(LIVE))
_BATCH_BYTES = (
    "COALESCE(SUM(LENGTH(payload) + COALESCE(LENGTH(result), 0)"
    " + COALESCE(LENGTH(traceback), 0) + COALESCE(LENGTH(error), 0)), 0)"
)
_TABLES_OF_A_JOB = ("batch", "worker", "jobsource", "remote_queues", "job")


def _chunks(ids: list[str]) -> Iterator[tuple[tuple[str, ...], str]]:
    for start in range(0, len(ids), _CHUNK):
        chunk = tuple(ids[start : start + _CHUNK])
        yield chunk, ",".join("?" * len(chunk))


def api_usage(conn: Connection, api_name: str) -> tuple[int, int, int]:
    """Return how many jobs the API has, how many of them are in progress, and the bytes
    their batches hold (items, results, errors)."""
    jobs, active = conn.exec_driver_sql(
        f"SELECT count(*), COALESCE(SUM(status IN ({_IN_PROGRESS_MARKS})), 0) FROM job"
        " WHERE api_name = ?",
        (*IN_PROGRESS, api_name),
    ).one()
    data = conn.exec_driver_sql(
        f"SELECT {_BATCH_BYTES} FROM batch"
        " WHERE job_id IN (SELECT job_id FROM job WHERE api_name = ?)",
        (api_name,),
    ).scalar()
    return int(jobs), int(active), int(data or 0)


def removable_jobs(conn: Connection, ended_before: float | None) -> list[tuple[str, str]]:
    """Return ``(job_id, api_name)`` of the ended jobs nothing writes to any more, oldest
    first; with ``ended_before``, only those that ended before it."""
    bound = "" if ended_before is None else " AND COALESCE(end_time, created_time) < ?"
    rows = conn.exec_driver_sql(
        f"SELECT job_id, api_name FROM job WHERE status NOT IN ({_IN_PROGRESS_MARKS}){bound}"
        f" AND NOT EXISTS (SELECT 1 FROM worker w WHERE w.job_id = job.job_id"
        f" AND w.state IN ({_LIVE_MARKS}))"
        " AND NOT EXISTS (SELECT 1 FROM remote_queues q WHERE q.job_id = job.job_id"
        " AND q.closed = 0) ORDER BY seq",
        (*IN_PROGRESS, *(() if ended_before is None else (ended_before,)), *LIVE),
    ).all()
    return [(str(row[0]), str(row[1])) for row in rows]


def data_bytes(conn: Connection, job_ids: list[str]) -> int:
    """Return the bytes the jobs' batches hold (items, results, errors)."""
    total = 0
    for chunk, marks in _chunks(job_ids):
        total += int(
            conn.exec_driver_sql(
                f"SELECT {_BATCH_BYTES} FROM batch WHERE job_id IN ({marks})", chunk
            ).scalar()
            or 0
        )
    return total


def delete_jobs(conn: Connection, job_ids: list[str]) -> None:
    """Delete the jobs with their batches, worker records, sources and queue records."""
    for chunk, marks in _chunks(job_ids):
        for table in _TABLES_OF_A_JOB:
            conn.exec_driver_sql(f"DELETE FROM {table} WHERE job_id IN ({marks})", chunk)


def forget_orphan_workers(conn: Connection) -> None:
    """Delete the ended workers' records of jobs that no longer exist (their API was
    deleted with its jobs while they were stopping)."""
    conn.exec_driver_sql(
        f"DELETE FROM worker WHERE state NOT IN ({_LIVE_MARKS})"
        " AND job_id NOT IN (SELECT job_id FROM job)",
        LIVE,
    )


def known_job_ids(conn: Connection) -> set[str]:
    """Return the id of every job the store has a job or worker record of."""
    rows = conn.exec_driver_sql("SELECT job_id FROM job UNION SELECT job_id FROM worker")
    return {str(job_id) for job_id in rows.scalars()}


def versions_in_use(conn: Connection) -> list[tuple[str, str, dict[str, Any]]]:
    """Return ``(api_name, project_dir, spec)`` of every API version something may still
    run: each deployed API's current one, and those of jobs in progress or with live
    workers."""
    rows = conn.exec_driver_sql(
        "SELECT name, project_dir, spec FROM api WHERE deleted_time IS NULL"
        " UNION SELECT api_name, project_dir, api_spec FROM job"
        f" WHERE status IN ({_IN_PROGRESS_MARKS}) OR job_id IN"
        f" (SELECT job_id FROM worker WHERE state IN ({_LIVE_MARKS}))",
        (*IN_PROGRESS, *LIVE),
    ).all()
    return [(str(row[0]), str(row[1]), json.loads(row[2])) for row in rows]


def free_pages(conn: Connection) -> int:
    """Return the bytes of the database's free pages (what VACUUM gives back)."""
    size = conn.exec_driver_sql("PRAGMA page_size").scalar()
    free = conn.exec_driver_sql("PRAGMA freelist_count").scalar()
    return int(size or 0) * int(free or 0)
