"""What a metrics scrape reads: every job's counters, the workers by state, GPU samples.

Each is one statement over the ``job`` or ``worker`` table, whatever the number of jobs:
the batch counts come from the counters each job row keeps in step with its batches
(``orchestrator.store.queue``), so a scrape never reads the ``batch`` table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from orchestrator.store.worker_queries import LIVE

_LIVE_MARKS = ",".join("?" * len(LIVE))


@dataclass(frozen=True)
class JobCounters:
    """A job's status and batch counters, as its row holds them."""

    job_id: str
    api_name: str
    status: str
    total: int  # batches enqueued
    queued: int
    leased: int  # in flight
    succeeded: int
    failed: int


def job_counters(conn: Connection) -> list[JobCounters]:
    """Return the status and batch counters of every job, oldest first.

    One pass over ``job`` that reads none of its JSON columns (spec, config, source).
    """
    rows = conn.exec_driver_sql(
        "SELECT job_id, api_name, status, total, queued, leased, succeeded, failed"
        " FROM job ORDER BY seq"
    ).all()
    return [JobCounters(*row) for row in rows]


def workers_by_state(conn: Connection) -> dict[str, int]:
    """Return how many worker records are in each state, over every job."""
    rows = conn.exec_driver_sql("SELECT state, count(*) FROM worker GROUP BY state").all()
    return {str(state): int(count) for state, count in rows}


@dataclass(frozen=True)
class WorkerGpus:
    """The latest GPU samples of a live worker."""

    worker_id: str
    job_id: str
    api_name: str
    samples: list[dict[str, Any]]


def live_gpu_samples(conn: Connection) -> list[WorkerGpus]:
    """Return the latest GPU samples of every live worker that has sent some."""
    rows = conn.exec_driver_sql(
        "SELECT w.worker_id, w.job_id, j.api_name, w.gpus FROM worker AS w"
        " JOIN job AS j ON j.job_id = w.job_id"
        f" WHERE w.gpus IS NOT NULL AND w.state IN ({_LIVE_MARKS}) ORDER BY w.worker_id",
        LIVE,
    ).all()
    return [
        WorkerGpus(str(worker), str(job), str(api), json.loads(gpus) or [])
        for worker, job, api, gpus in rows
    ]
