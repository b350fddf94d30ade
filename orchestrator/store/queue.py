"""The lease queue kept in SQLite: lease, heartbeat, ack, expire.

Every function runs inside the caller's write transaction and keeps the job's
counters (``queued``, ``leased``, ``succeeded``, ``failed``) in step with the
batch rows, so counts stay exact however acks, expiries and retries interleave.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy.engine import Connection

from orchestrator.status import BatchState, JobStatus, WorkerState
from orchestrator.store import isolation

_LEASE = """
UPDATE batch SET state = 'leased', worker_id = ?, lease_expires = ?, leased_time = ?,
attempts = attempts + 1
WHERE id IN (SELECT id FROM batch WHERE job_id = ? AND state = 'queued' ORDER BY idx LIMIT ?)
RETURNING id, idx, first_item, payload, attempts
"""


# A job's leased batches, through the (job, state) index.
_LEASED_OF_JOB = "job_id = ? AND state = 'leased'"
# Batches a worker holds, by primary key: the "+" keeps SQLite off the (job, state) index,
# which would walk every leased batch of the job instead.
_HELD_BY_ID = "id IN ({marks}) AND +job_id = ? AND +state = 'leased' AND worker_id = ?"


@dataclass(frozen=True)
class Lease:
    """A batch handed to a worker until ``lease_expires``."""

    batch_id: int
    index: int
    first_item: int
    payload: str  # the items, as the JSON text they were stored as
    attempts: int


def lease(
    conn: Connection, job_id: str, worker_id: str, now: float, visibility_s: float, count: int
) -> list[Lease]:
    """Lease up to ``count`` of the job's lowest queued batches to ``worker_id``, in order."""
    rows = conn.exec_driver_sql(_LEASE, (worker_id, now + visibility_s, now, job_id, count)).all()
    if rows:
        _shift(conn, job_id, queued=-len(rows), leased=+len(rows))
    leases = [Lease(row[0], row[1], row[2], row[3], row[4]) for row in rows]
    return sorted(leases, key=lambda lease: lease.index)


def enqueue(conn: Connection, job_id: str, chunk: list[tuple[str, int, int, int, str]]) -> None:
    """Append batches (``job_id, idx, first_item, size, payload``) to the job's queue."""
    conn.exec_driver_sql(
        "INSERT INTO batch (job_id, idx, first_item, size, payload, state, attempts, errors)"
        " VALUES (?, ?, ?, ?, ?, 'queued', 0, 0)",
        chunk,
    )
    items = sum(size for _, _, _, size, _ in chunk)
    conn.exec_driver_sql(
        "UPDATE job SET total = total + ?, queued = queued + ?,"
        " enqueued_items = enqueued_items + ? WHERE job_id = ?",
        (len(chunk), len(chunk), items, job_id),
    )


def queued_and_live_workers(conn: Connection, job_id: str) -> tuple[int, int]:
    """Return how many batches the job has queued and how many of its workers are live."""
    queued, workers = conn.exec_driver_sql(
        "SELECT queued, (SELECT count(*) FROM worker WHERE job_id = ? AND state IN (?, ?, ?))"
        " FROM job WHERE job_id = ?",
        (job_id, WorkerState.PENDING, WorkerState.INITIALIZING, WorkerState.RUNNING, job_id),
    ).one()
    return int(queued), int(workers)


def extend_running_leases(conn: Connection, until: float) -> None:
    """Let every lease of a running job last until at least ``until`` (after a restart)."""
    conn.exec_driver_sql(
        "UPDATE batch SET lease_expires = max(lease_expires, ?) WHERE state = 'leased'"
        " AND job_id IN (SELECT job_id FROM job WHERE status = ?)",
        (until, JobStatus.RUNNING.value),
    )


def heartbeat(
    conn: Connection,
    job_id: str,
    worker_id: str,
    batch_ids: list[int],
    now: float,
    visibility_s: float,
) -> int:
    """Extend the leases among ``batch_ids`` that ``worker_id`` still holds; return how many."""
    if not batch_ids:
        return 0
    marks = ",".join("?" * len(batch_ids))
    result = conn.exec_driver_sql(
        f"UPDATE batch SET lease_expires = ? WHERE {_HELD_BY_ID.format(marks=marks)}",
        (now + visibility_s, *batch_ids, job_id, worker_id),
    )
    return int(result.rowcount)


@dataclass(frozen=True)
class Success:
    """A batch's successful outcome as its worker reported it."""

    batch_id: int
    duration: float
    result_json: str | None


#: Told of each ack that counted: its outcome ("succeeded" or "failed"), seconds from its
#: batch's lease to the ack (None when the lease time is unknown), and the predict time its
#: worker reported.
AckObserver = Callable[[str, float | None, float], None]


def ack_successes(
    conn: Connection,
    job_id: str,
    successes: list[Success],
    now: float,
    observe: AckObserver | None = None,
) -> int:
    """Record batches' successes; return how many counted.

    A batch that already finished is skipped. A late ack from a worker whose lease
    expired still counts when the batch has not finished elsewhere: the work was
    done, and counting it once is what matters. ``observe`` hears of each that counted.
    """
    if not successes:
        return 0
    opened = _open_rows(conn, job_id, [s.batch_id for s in successes])
    states = {batch_id: row.state for batch_id, row in opened.items()}
    unique = {s.batch_id: s for s in successes}.values()  # one batch named twice counts once
    counted = [s for s in unique if s.batch_id in states]
    if not counted:
        return 0
    conn.exec_driver_sql(
        "UPDATE batch SET state = 'succeeded', duration = ?, result = ?, finished_time = ?,"
        " lease_expires = NULL WHERE id = ?",
        [(s.duration, s.result_json, now, s.batch_id) for s in counted],
    )
    was_queued = sum(1 for s in counted if states[s.batch_id] == BatchState.QUEUED)
    roots = {s.batch_id: r for s in counted if (r := opened[s.batch_id].root_id) is not None}
    own = [s for s in counted if s.batch_id not in roots]  # parts count in their roots
    parts = [(s.batch_id, s.duration) for s in counted if s.batch_id in roots]
    deltas = isolation.parts_succeeded(conn, parts, roots, now)
    isolation.add(
        deltas,
        {
            "queued": -was_queued,
            "leased": was_queued - len(counted),
            "succeeded": len(own),
            "time_sum": sum(s.duration for s in own),
            "items_succeeded": sum(opened[s.batch_id].size for s in counted),
        },
    )
    _shift(conn, job_id, **deltas)
    if observe is not None:
        for s in counted:
            observe(BatchState.SUCCEEDED, _since(opened[s.batch_id].leased_time, now), s.duration)
    return len(counted)


def _since(leased_time: float | None, now: float) -> float | None:
    return None if leased_time is None else max(0.0, now - leased_time)


@dataclass(frozen=True)
class Failure:
    """A batch whose ``predict`` raised, as its worker reported it."""

    batch_id: int
    error: str
    traceback: str
    duration: float = 0.0  # how long predict ran before it raised, as the worker measured it


def ack_failure(
    conn: Connection,
    job_id: str,
    failure: Failure,
    worker_id: str,
    retries: int,
    now: float,
    observe: AckObserver | None = None,
) -> str | None:
    """Record that ``predict`` raised: requeue it while retries remain, else fail it (in a
    job that isolates failures, split it in halves while its bound allows: ``isolation``;
    parts are not retried).

    Returns the batch's new state, or None if it had already finished, or if another
    worker holds it now (this worker's lease ran out: the holder's outcome will count).
    """
    batch_id, error, traceback = failure.batch_id, failure.error, failure.traceback
    row = _open_rows(conn, job_id, [batch_id]).get(batch_id)
    if row is None or (row.state == BatchState.LEASED and _holder(conn, batch_id) != worker_id):
        return None
    previous = row.state
    if observe is not None:
        observe(BatchState.FAILED, _since(row.leased_time, now), failure.duration)
    errors, size, root_id = conn.exec_driver_sql(
        "UPDATE batch SET errors = errors + 1, error = ?, traceback = ?, worker_id = ?"
        " WHERE id = ? RETURNING errors, size, root_id",
        (error, traceback, worker_id, batch_id),
    ).one()
    if errors <= retries and root_id is None:
        conn.exec_driver_sql(
            "UPDATE batch SET state = 'queued', lease_expires = NULL WHERE id = ?", (batch_id,)
        )
        if previous != BatchState.QUEUED:  # a failure of a queued batch keeps it queued
            _shift(conn, job_id, **{previous: -1}, queued=+1)
        return BatchState.QUEUED.value
    factor = isolation.calls_factor(conn, job_id, size, root_id)
    if factor is not None:
        state, deltas = isolation.fail(conn, job_id, batch_id, previous, factor, now)
        _shift(conn, job_id, **deltas)
        return state
    conn.exec_driver_sql(
        "UPDATE batch SET state = 'failed', finished_time = ?, lease_expires = NULL WHERE id = ?",
        (now, batch_id),
    )
    _shift(conn, job_id, **{previous: -1}, failed=+1, items_failed=size)
    return BatchState.FAILED.value


def expire_leases(conn: Connection, job_id: str, now: float) -> int:
    """Put back every batch whose lease ran out; return how many."""
    return _requeue(conn, job_id, f"{_LEASED_OF_JOB} AND lease_expires < ?", (job_id, now))


def release_worker(conn: Connection, job_id: str, worker_id: str) -> int:
    """Put back every batch a dead worker held, without waiting for its leases to expire."""
    return _requeue(conn, job_id, f"{_LEASED_OF_JOB} AND worker_id = ?", (job_id, worker_id))


def release(conn: Connection, job_id: str, worker_id: str, batch_ids: list[int]) -> int:
    """Put back batches a stopping worker leased but never started; return how many."""
    if not batch_ids:
        return 0
    marks = ",".join("?" * len(batch_ids))
    return _requeue(conn, job_id, _HELD_BY_ID.format(marks=marks), (*batch_ids, job_id, worker_id))


def _requeue(conn: Connection, job_id: str, where: str, params: tuple[object, ...]) -> int:
    """Put the leased batches matching ``where`` back in the queue; return how many."""
    result = conn.exec_driver_sql(
        f"UPDATE batch SET state = 'queued', lease_expires = NULL WHERE {where}", params
    )
    if result.rowcount:
        _shift(conn, job_id, leased=-result.rowcount, queued=+result.rowcount)
    return int(result.rowcount)


def _holder(conn: Connection, batch_id: int) -> str | None:
    """Return the worker a batch is leased to (by primary key)."""
    row = conn.exec_driver_sql("SELECT worker_id FROM batch WHERE id = ?", (batch_id,)).first()
    return None if row is None else row[0]


def _open_states(conn: Connection, job_id: str, batch_ids: list[int]) -> dict[int, str]:
    """Return the batches among ``batch_ids`` that are still queued or leased, with their state."""
    return {batch_id: row.state for batch_id, row in _open_rows(conn, job_id, batch_ids).items()}


class OpenRow(NamedTuple):
    """What counting the end of a batch still open needs."""

    state: str
    leased_time: float | None  # when its lease began
    size: int
    root_id: int | None  # the job's batch it is a part of (isolation), if any


def _open_rows(conn: Connection, job_id: str, batch_ids: list[int]) -> dict[int, OpenRow]:
    """Return the batches among ``batch_ids`` that are still queued or leased: their state,
    when their lease began, their size and their root.

    Looked up by primary key only: a condition on the job and state would let SQLite walk
    the (job, state) index over every open batch of the job instead, on every ack.
    """
    marks = ",".join("?" * len(batch_ids))
    rows = conn.exec_driver_sql(
        f"SELECT id, job_id, state, leased_time, size, root_id FROM batch WHERE id IN ({marks})",
        tuple(batch_ids),
    ).all()
    open_ = (BatchState.QUEUED, BatchState.LEASED)
    return {
        row[0]: OpenRow(row[2], row[3], int(row[4]), row[5])
        for row in rows
        if row[1] == job_id and row[2] in open_
    }


def _shift(conn: Connection, job_id: str, **deltas: float) -> None:
    """Move the job's batch counters by ``deltas`` (``queued=-2, leased=+2``)."""
    columns = ", ".join(f"{name} = {name} + ?" for name in deltas)
    conn.exec_driver_sql(f"UPDATE job SET {columns} WHERE job_id = ?", (*deltas.values(), job_id))


# --- queue transports (aws): the work queue's messages mirror the queued batches ----------


@dataclass(frozen=True)
class Unpublished:
    """A queued batch whose current attempt has no message yet."""

    batch_id: int
    index: int
    payload: str
    attempt: int  # the attempt its message carries


def unpublished(conn: Connection, job_id: str, limit: int) -> list[Unpublished]:
    """Return up to ``limit`` of the job's queued batches that need a message, in order."""
    if limit <= 0:
        return []
    rows = conn.exec_driver_sql(
        "SELECT id, idx, payload, generation + 1 FROM batch"
        " WHERE job_id = ? AND state = 'queued' AND published = 0 ORDER BY idx LIMIT ?",
        (job_id, limit),
    ).all()
    return [Unpublished(row[0], row[1], row[2], row[3]) for row in rows]


def pace_of(conn: Connection, job_id: str) -> tuple[int, float]:
    """Return how many of the job's batches succeeded and the seconds they took."""
    succeeded, time_sum = conn.exec_driver_sql(
        "SELECT succeeded, time_sum FROM job WHERE job_id = ?", (job_id,)
    ).one()
    return int(succeeded), float(time_sum)


def waiting_on_the_queue(conn: Connection, job_id: str) -> int:
    """Return how many of the job's batches have a message no worker has reported yet
    (through the partial index: as many steps as there are such batches)."""
    return int(
        conn.exec_driver_sql(
            "SELECT count(*) FROM batch INDEXED BY ix_batch_waiting"
            " WHERE job_id = ? AND state = 'queued' AND published = 1",
            (job_id,),
        ).scalar_one()
    )


def mark_published(conn: Connection, batches: list[Unpublished]) -> None:
    """Record that each batch's message (with its attempt) is on the work queue."""
    if not batches:
        return
    conn.exec_driver_sql(
        "UPDATE batch SET published = 1, generation = ? WHERE id = ? AND generation = ?",
        [(b.attempt, b.batch_id, b.attempt - 1) for b in batches],
    )


def republish(conn: Connection, batch_id: int) -> None:
    """Ask for a new message for a batch whose last one was deleted (a retry after failure)."""
    conn.exec_driver_sql("UPDATE batch SET published = 0 WHERE id = ?", (batch_id,))


@dataclass(frozen=True)
class Message:
    """Where a batch's newest message stands: its attempt, and whether it is on the queue."""

    attempt: int
    published: bool

    def is_current(self, attempt: int) -> bool:
        """Return whether a report of ``attempt`` is about this message.

        Reports of an older attempt, or of one whose message is gone (the batch failed and
        waits for its next message), are stale: a lease, failure or release in them is
        ignored (a success still counts once, as it always does).
        """
        return attempt == self.attempt and self.published


def messages_of(conn: Connection, batch_ids: list[int]) -> dict[int, Message]:
    """Return where the newest message of each batch stands."""
    unique = tuple(set(batch_ids))
    if not unique:
        return {}
    marks = ",".join("?" * len(unique))
    rows = conn.exec_driver_sql(
        f"SELECT id, generation, published FROM batch WHERE id IN ({marks})", unique
    ).all()
    return {int(row[0]): Message(int(row[1]), bool(row[2])) for row in rows}


def record_leases(
    conn: Connection, job_id: str, worker_id: str, batch_ids: list[int], now: float | None = None
) -> int:
    """Record that ``worker_id`` received the current messages of these batches (at ``now``,
    when the event says it was received).

    A finished batch is skipped; a batch another worker held moves to this one (its
    message's visibility ran out there). Returns how many were recorded.
    """
    unique = list(dict.fromkeys(batch_ids))  # a message received twice is one lease
    states = _open_states(conn, job_id, unique) if unique else {}
    fresh = [batch_id for batch_id in unique if batch_id in states]
    if not fresh:
        return 0
    conn.exec_driver_sql(
        "UPDATE batch SET state = 'leased', worker_id = ?, lease_expires = NULL,"
        " leased_time = ?, attempts = attempts + 1 WHERE id = ?",
        [(worker_id, now, batch_id) for batch_id in fresh],
    )
    was_queued = sum(1 for batch_id in fresh if states[batch_id] == BatchState.QUEUED)
    if was_queued:
        _shift(conn, job_id, queued=-was_queued, leased=+was_queued)
    return len(fresh)
