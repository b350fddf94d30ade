"""Statements that measure what jobs hold and remove ended ones (deleting an API, prune).

A job is removable only once it ended, none of its workers is live, its remote queues
(aws) are closed, and none of its retries is kept: nothing can still write to it or read
it.
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


def removable_jobs(
    conn: Connection,
    ended_before: float | None,
    api_name: str | None = None,
    among: list[str] | None = None,
) -> list[tuple[str, str]]:
    """Return ``(job_id, api_name)`` of the ended jobs nothing writes to or reads from any
    more, oldest first.

    A job is kept while it is in progress, has a live worker or an open remote queue, or
    (with ``ended_before``) ended at or after it; so is every job of a kept job's family
    (its ancestors through ``parent_job_id``, and their retries): a retry still enqueuing
    reads its parent's failed batches, and merged results read the parent and every retry
    of it. A family is thus removed whole or not at all.

    Args:
        conn: The caller's connection (a write transaction re-checks what it deletes).
        ended_before: Only jobs (and descendants) that ended before this epoch time.
        api_name: Only this API's jobs.
        among: Only these jobs (at most a few hundred).
    """
    bound = "" if ended_before is None else " OR COALESCE(end_time, created_time) >= ?"
    marks = ",".join("?" * len(among or []))
    rows = conn.exec_driver_sql(
        "WITH RECURSIVE kept(job_id) AS ("
        f" SELECT job_id FROM job WHERE status IN ({_IN_PROGRESS_MARKS}){bound}"
        " OR EXISTS (SELECT 1 FROM worker w WHERE w.job_id = job.job_id"
        f" AND w.state IN ({_LIVE_MARKS}))"
        " OR EXISTS (SELECT 1 FROM remote_queues q WHERE q.job_id = job.job_id"
        " AND q.closed = 0)"
        # one recursive step both ways (older SQLite takes one recursive SELECT only):
        # the kept job's parent, and its retries
        " UNION SELECT j.job_id FROM kept k JOIN job j ON j.parent_job_id = k.job_id"
        " OR j.job_id = (SELECT p.parent_job_id FROM job p WHERE p.job_id = k.job_id))"
        " SELECT job_id, api_name FROM job WHERE job_id NOT IN (SELECT job_id FROM kept)"
        + ("" if api_name is None else " AND api_name = ?")
        + ("" if among is None else f" AND job_id IN ({marks})")
        + " ORDER BY seq",
        (
            *IN_PROGRESS,
            *(() if ended_before is None else (ended_before,)),
            *LIVE,
            *(() if api_name is None else (api_name,)),
            *(among or ()),
        ),
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


def used_bytes(conn: Connection) -> int:
    """Return the bytes of the database's pages in use (its size once compacted: free pages
    go, and the write-ahead log is folded in and emptied)."""
    size = conn.exec_driver_sql("PRAGMA page_size").scalar()
    pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
    free = conn.exec_driver_sql("PRAGMA freelist_count").scalar()
    return int(size or 0) * (int(pages or 0) - int(free or 0))
