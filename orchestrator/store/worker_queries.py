"""Statements on the ``worker`` table: a job's worker records, their states and ends."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.engine import Connection
from sqlmodel import Session, select

from orchestrator.status import JobStatus, WorkerState
from orchestrator.store.models import Job, WorkerRecord

LIVE = tuple(state.value for state in WorkerState if state.is_live)
_LIVE_MARKS = ",".join("?" * len(LIVE))


def add(session: Session, job_id: str, slot: int, now: float) -> str:
    """Record a new worker of the job serving ``slot``; return its id (``<job_id>-w<n>``)."""
    started = len(
        session.exec(select(WorkerRecord.worker_id).where(WorkerRecord.job_id == job_id)).all()
    )
    worker_id = f"{job_id}-w{started}"
    session.add(WorkerRecord(worker_id=worker_id, job_id=job_id, slot=slot, created_time=now))
    session.commit()
    return worker_id


def get(session: Session, worker_id: str) -> WorkerRecord | None:
    """Return the worker's record, or None."""
    return session.get(WorkerRecord, worker_id)


def of_job(session: Session, job_id: str) -> list[WorkerRecord]:
    """Return every worker record of the job."""
    return list(session.exec(select(WorkerRecord).where(WorkerRecord.job_id == job_id)).all())


def live(session: Session) -> list[WorkerRecord]:
    """Return every live worker record, of any job."""
    return list(session.exec(select(WorkerRecord).where(WorkerRecord.state.in_(LIVE))).all())  # type: ignore[attr-defined]


def live_of_ended_jobs(session: Session) -> list[WorkerRecord]:
    """Return the live workers of jobs that are not running (still to be reaped)."""
    running = select(Job.job_id).where(Job.status == JobStatus.RUNNING.value)
    return list(
        session.exec(
            select(WorkerRecord).where(
                WorkerRecord.state.in_(LIVE),  # type: ignore[attr-defined]
                WorkerRecord.job_id.not_in(running),  # type: ignore[attr-defined]
            )
        ).all()
    )


def job_of(conn: Connection, worker_id: str) -> str | None:
    """Return the job of the worker, or None if there is no such worker."""
    job_id = conn.exec_driver_sql(
        "SELECT job_id FROM worker WHERE worker_id = ?", (worker_id,)
    ).scalar()
    return None if job_id is None else str(job_id)


def touch(conn: Connection, worker_id: str, now: float) -> None:
    """Note that the worker was heard from."""
    conn.exec_driver_sql("UPDATE worker SET last_seen = ? WHERE worker_id = ?", (now, worker_id))


def set_gpus(conn: Connection, worker_id: str, samples: list[dict[str, Any]], now: float) -> None:
    """Keep the latest samples of the worker's GPUs (``runtime.protocol.GpuKey`` fields)."""
    conn.exec_driver_sql(
        "UPDATE worker SET gpus = ?, gpus_time = ? WHERE worker_id = ?",
        (json.dumps(samples), now, worker_id),
    )


def advance(conn: Connection, worker_id: str, state: WorkerState, now: float) -> None:
    """Move a worker that has not run yet to ``state`` (initializing, then running)."""
    conn.exec_driver_sql(
        "UPDATE worker SET state = ?, last_seen = ? WHERE worker_id = ? AND state IN (?, ?)",
        (state.value, now, worker_id, WorkerState.PENDING, WorkerState.INITIALIZING),
    )


def note_end(conn: Connection, worker_id: str, reason: str, error: str | None, now: float) -> None:
    """Keep why the worker says it is ending, for when its exit is seen."""
    conn.exec_driver_sql(
        "UPDATE worker SET reason = ?, error = ?, last_seen = ? WHERE worker_id = ?",
        (reason, error, now, worker_id),
    )


def set_handle(conn: Connection, worker_id: str, handle: dict[str, Any], now: float) -> None:
    """Record how the backend finds the started worker again."""
    conn.exec_driver_sql(
        "UPDATE worker SET handle = ?, started_time = ? WHERE worker_id = ?",
        (json.dumps(handle), now, worker_id),
    )


def end_facts(conn: Connection, worker_id: str) -> tuple[Any, ...]:
    """Return the worker's ``state, reason, error``."""
    return tuple(
        conn.exec_driver_sql(
            "SELECT state, reason, error FROM worker WHERE worker_id = ?", (worker_id,)
        ).one()
    )


def write_end(
    conn: Connection,
    worker_id: str,
    state: WorkerState,
    reason: str,
    error: str | None,
    exit_code: int | None,
    now: float,
) -> None:
    """Mark the worker ended."""
    conn.exec_driver_sql(
        "UPDATE worker SET state = ?, reason = ?, error = ?, exit_code = ?, ended_time = ?"
        " WHERE worker_id = ?",
        (state.value, reason, error, exit_code, now, worker_id),
    )


def launched(conn: Connection, job_id: str) -> int:
    """Return how many workers the job has had."""
    return int(
        conn.exec_driver_sql("SELECT count(*) FROM worker WHERE job_id = ?", (job_id,)).scalar_one()
    )


def live_count(conn: Connection, job_id: str) -> int:
    """Return how many of the job's workers are live."""
    return int(
        conn.exec_driver_sql(
            f"SELECT count(*) FROM worker WHERE job_id = ? AND state IN ({_LIVE_MARKS})",
            (job_id, *LIVE),
        ).scalar_one()
    )


def live_everywhere(conn: Connection) -> int:
    """Return how many workers are live across every job (what ``max_live_workers`` caps)."""
    return int(
        conn.exec_driver_sql(
            f"SELECT count(*) FROM worker WHERE state IN ({_LIVE_MARKS})", LIVE
        ).scalar_one()
    )


def live_slots(conn: Connection, job_id: str) -> set[int]:
    """Return the slots the job's live workers serve."""
    rows = conn.exec_driver_sql(
        f"SELECT slot FROM worker WHERE job_id = ? AND state IN ({_LIVE_MARKS})", (job_id, *LIVE)
    )
    return {int(slot) for slot in rows.scalars()}


def last_failure(conn: Connection, job_id: str) -> tuple[str | None, str | None] | None:
    """Return the reason and error of the job's most recent failed worker, or None."""
    row = conn.exec_driver_sql(
        "SELECT reason, error FROM worker WHERE job_id = ? AND state = ?"
        " ORDER BY ended_time DESC LIMIT 1",
        (job_id, WorkerState.FAILED),
    ).first()
    return None if row is None else (row[0], row[1])


def failures(conn: Connection, job_id: str) -> int:
    """Return how many of the job's workers failed."""
    return int(
        conn.exec_driver_sql(
            "SELECT count(*) FROM worker WHERE job_id = ? AND state = ?",
            (job_id, WorkerState.FAILED),
        ).scalar_one()
    )


def states(conn: Connection, job_ids: list[str]) -> list[tuple[str, str, float]]:
    """Return ``job_id, state, created_time`` of every worker of the jobs."""
    marks = ",".join("?" * len(job_ids))
    rows = conn.exec_driver_sql(
        f"SELECT job_id, state, created_time FROM worker WHERE job_id IN ({marks})",
        tuple(job_ids),
    ).all()
    return [(str(j), str(s), float(c)) for j, s, c in rows]
