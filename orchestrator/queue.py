"""The lease queue kept in SQLite: lease, heartbeat, ack, expire.

Every function runs inside the caller's write transaction and keeps the job's
counters (``queued``, ``leased``, ``succeeded``, ``failed``) in step with the
batch rows, so counts stay exact however acks, expiries and retries interleave.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Connection

from orchestrator.status import BatchState

_LEASE_NEXT = """
UPDATE batch SET state = 'leased', worker_id = ?, lease_expires = ?, attempts = attempts + 1
WHERE id = (SELECT id FROM batch WHERE job_id = ? AND state = 'queued' ORDER BY idx LIMIT 1)
RETURNING id, idx, first_item, payload, attempts
"""


@dataclass(frozen=True)
class Lease:
    """A batch handed to a worker until ``lease_expires``."""

    batch_id: int
    index: int
    first_item: int
    payload: str  # the items, as the JSON text they were stored as
    attempts: int


def lease_next(
    conn: Connection, job_id: str, worker_id: str, now: float, visibility_s: float
) -> Lease | None:
    """Lease the job's lowest queued batch to ``worker_id``, or return None."""
    row = conn.exec_driver_sql(_LEASE_NEXT, (worker_id, now + visibility_s, job_id)).first()
    if row is None:
        return None
    _shift(conn, job_id, queued=-1, leased=+1)
    return Lease(batch_id=row[0], index=row[1], first_item=row[2], payload=row[3], attempts=row[4])


def heartbeat(
    conn: Connection, batch_id: int, worker_id: str, now: float, visibility_s: float
) -> bool:
    """Extend a lease; return False when the worker no longer holds it."""
    result = conn.exec_driver_sql(
        "UPDATE batch SET lease_expires = ? WHERE id = ? AND state = 'leased' AND worker_id = ?",
        (now + visibility_s, batch_id, worker_id),
    )
    return bool(result.rowcount)


def ack_success(
    conn: Connection,
    job_id: str,
    batch_id: int,
    duration: float,
    result_json: str | None,
    now: float,
) -> bool:
    """Record a batch's success; return False if it had already finished.

    A late ack from a worker whose lease expired still counts when the batch has
    not finished elsewhere: the work was done, and counting it once is what matters.
    """
    previous = _open_state(conn, job_id, batch_id)
    if previous is None:
        return False
    conn.exec_driver_sql(
        "UPDATE batch SET state = 'succeeded', duration = ?, result = ?, finished_time = ?,"
        " lease_expires = NULL WHERE id = ?",
        (duration, result_json, now, batch_id),
    )
    _shift(conn, job_id, **{previous: -1}, succeeded=+1)
    conn.exec_driver_sql(
        "UPDATE job SET time_sum = time_sum + ? WHERE job_id = ?", (duration, job_id)
    )
    return True


def ack_failure(
    conn: Connection,
    job_id: str,
    batch_id: int,
    worker_id: str,
    error: str,
    traceback: str,
    retries: int,
    now: float,
) -> str | None:
    """Record that ``predict`` raised: requeue it while retries remain, else fail it.

    Returns the batch's new state, or None if it had already finished.
    """
    previous = _open_state(conn, job_id, batch_id)
    if previous is None:
        return None
    errors = conn.exec_driver_sql(
        "UPDATE batch SET errors = errors + 1, error = ?, traceback = ?, worker_id = ?"
        " WHERE id = ? RETURNING errors",
        (error, traceback, worker_id, batch_id),
    ).scalar_one()
    if errors <= retries:
        conn.exec_driver_sql(
            "UPDATE batch SET state = 'queued', lease_expires = NULL WHERE id = ?", (batch_id,)
        )
        _shift(conn, job_id, **{previous: -1}, queued=+1)
        return BatchState.QUEUED.value
    conn.exec_driver_sql(
        "UPDATE batch SET state = 'failed', finished_time = ?, lease_expires = NULL WHERE id = ?",
        (now, batch_id),
    )
    _shift(conn, job_id, **{previous: -1}, failed=+1)
    return BatchState.FAILED.value


def expire_leases(conn: Connection, job_id: str, now: float) -> int:
    """Put back every batch whose lease ran out; return how many."""
    return _requeue_leased(conn, job_id, "lease_expires < ?", now)


def release_worker(conn: Connection, job_id: str, worker_id: str) -> int:
    """Put back every batch a dead worker held, without waiting for its leases to expire."""
    return _requeue_leased(conn, job_id, "worker_id = ?", worker_id)


def _requeue_leased(conn: Connection, job_id: str, condition: str, value: object) -> int:
    result = conn.exec_driver_sql(
        "UPDATE batch SET state = 'queued', lease_expires = NULL"
        f" WHERE job_id = ? AND state = 'leased' AND {condition}",
        (job_id, value),
    )
    if result.rowcount:
        _shift(conn, job_id, leased=-result.rowcount, queued=+result.rowcount)
    return int(result.rowcount)


def _open_state(conn: Connection, job_id: str, batch_id: int) -> str | None:
    state = conn.exec_driver_sql(
        "SELECT state FROM batch WHERE id = ? AND job_id = ?", (batch_id, job_id)
    ).scalar()
    return str(state) if state in (BatchState.QUEUED, BatchState.LEASED) else None


def _shift(conn: Connection, job_id: str, **deltas: int) -> None:
    columns = ", ".join(f"{name} = {name} + ?" for name in deltas)
    conn.exec_driver_sql(f"UPDATE job SET {columns} WHERE job_id = ?", (*deltas.values(), job_id))
