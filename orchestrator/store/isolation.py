"""Find the poison item: a batch that failed after its retries is split in halves, and each
half that fails again is split too, until each failing item stands alone
(``"isolate_failures": true``).

**Parts.** A half is an ordinary queued ``batch`` row, so every transport carries it: the
lease queue, and the aws publisher, which sends queued rows with ``published = 0``. Its
``parent_id`` is the row it halves, its ``root_id`` the job's own batch it comes from, and its
``idx`` is negative (``-(2·parent + 2)`` for the first half, ``-(2·parent + 1)`` for the
second): unique, outside the reference's batch indices ``0..total-1``, and leased before
them, so a search ends soon after it starts. A row that was split takes the state
``split``. Parts are not retried: the batch they come from already failed after its retries.

**Counting.** Parts move the job's ``queued`` and ``leased`` counters like any row (they are
in the queue), never ``total``, ``succeeded`` or ``failed``: those count the job's own
batches, as the reference defines them. A root being searched is in none of those counters
until its last part ends; then it counts once, as failed if any of its items failed (the
reference's "a batch with any failed item counts as failed"), else as succeeded. The job's
``items_succeeded`` and ``items_failed`` count items as batches and parts end.

**Crash safety.** Each step runs in the write transaction of the ack that causes it, and
``queue`` takes a part's outcome only while it is queued or leased, as for any batch: a
killed worker's part goes back to the queue, and a late or repeated ack finds it ended, so
nothing is lost or counted twice, and the orchestrator can die between any two steps.

**The bound.** The parts of one batch of n items get at most ``bound(n)`` =
``max(ceil(factor · n), 2 · ceil(log2 n))`` predict calls (``factor`` is the
``isolation_max_calls_factor`` setting when the job was submitted, default 1: as many calls
as running the items one by one; the second term is what finding a single poison item
takes, so one is always found).
Each split takes its two calls from that budget when it is made (a part run again because its
worker died is not charged twice). A failed part that the budget cannot split is recorded
failed as a group, with ``isolation`` saying so.
"""

from __future__ import annotations

import json
import math

from sqlalchemy.engine import Connection

from orchestrator.status import BatchState

#: The ``isolation_max_calls_factor`` setting's default.
DEFAULT_CALLS_FACTOR = 1.0
#: ``isolation`` of a failed part that holds one item: the search found it.
ISOLATED = "isolated"

Deltas = dict[str, float]


def bound(size: int, factor: float) -> int:
    """Return how many predict calls the parts of a batch of ``size`` items may take."""
    if size < 2:
        return 0
    # A whole search never takes more than 2n - 2 calls: a larger factor changes nothing.
    scaled = 0.0 if math.isnan(factor) else min(max(factor, 0.0), 2.0) * size
    return max(math.ceil(scaled), 2 * math.ceil(math.log2(size)))


def stopped_note(calls: int) -> str:
    """Return the ledger's word for a part the bound kept from being split."""
    return f"isolation stopped: bound of {calls} predict calls reached"


def calls_factor(conn: Connection, job_id: str, size: int, root_id: int | None) -> float | None:
    """Return the bound's factor of the search a batch that failed for good goes into, or
    None when it is not searched (its job does not isolate failures, or it is one item)."""
    if root_id is None and size < 2:
        return None
    isolate, factor = conn.exec_driver_sql(
        "SELECT isolate_failures, isolation_calls_factor FROM job WHERE job_id = ?", (job_id,)
    ).one()
    return float(factor) if isolate else None


def fail(
    conn: Connection, job_id: str, batch_id: int, previous: str, factor: float, now: float
) -> tuple[str, Deltas]:
    """Split a batch or part that failed for good, or record it failed if it cannot be split.

    Returns its new state and how the job's counters move.
    """
    first_item, size, payload, root_id = conn.exec_driver_sql(
        "SELECT first_item, size, payload, root_id FROM batch WHERE id = ?", (batch_id,)
    ).one()
    root = batch_id if root_id is None else int(root_id)
    root_size, calls = conn.exec_driver_sql(
        "SELECT size, isolation_calls FROM batch WHERE id = ?", (root,)
    ).one()
    limit = bound(int(root_size), factor)
    if size > 1 and calls + 2 <= limit:
        _split(conn, job_id, batch_id, int(first_item), str(payload), root, now)
        deltas: Deltas = {previous: -1}
        add(deltas, {"queued": +2})  # a failure reported for a queued row: net one more
        return BatchState.SPLIT.value, deltas
    note = ISOLATED if size == 1 else stopped_note(limit)
    conn.exec_driver_sql(
        "UPDATE batch SET state = 'failed', finished_time = ?, lease_expires = NULL,"
        " isolation = ? WHERE id = ?",
        (now, note, batch_id),
    )
    deltas = {previous: -1, "items_failed": size}
    if root_id is None:  # a root the bound gives no split at all: it fails whole
        deltas["failed"] = 1
        return BatchState.FAILED.value, deltas
    add(deltas, part_ended(conn, root, failed_items=size, duration=0.0, now=now))
    return BatchState.FAILED.value, deltas


def _split(
    conn: Connection,
    job_id: str,
    batch_id: int,
    first_item: int,
    payload: str,
    root: int,
    now: float,
) -> None:
    """Queue the two halves of a failed row, mark it split, and charge its root two calls."""
    items = json.loads(payload)
    half = (len(items) + 1) // 2
    halves = (
        (-(2 * batch_id + 2), first_item, items[:half]),
        (-(2 * batch_id + 1), first_item + half, items[half:]),
    )
    conn.exec_driver_sql(
        "INSERT INTO batch (job_id, idx, first_item, size, payload, state, attempts, errors,"
        " parent_id, root_id) VALUES (?, ?, ?, ?, ?, 'queued', 0, 0, ?, ?)",
        [
            (job_id, idx, first, len(part), json.dumps(part), batch_id, root)
            for idx, first, part in halves
        ],
    )
    conn.exec_driver_sql(
        "UPDATE batch SET state = 'split', finished_time = ?, lease_expires = NULL WHERE id = ?",
        (now, batch_id),
    )
    # The split row was one of the root's open parts, unless it is the root itself.
    opened = 2 if batch_id == root else 1
    conn.exec_driver_sql(
        "UPDATE batch SET isolation_calls = isolation_calls + 2, open_parts = open_parts + ?"
        " WHERE id = ?",
        (opened, root),
    )


def parts_succeeded(
    conn: Connection, parts: list[tuple[int, float]], roots: dict[int, int], now: float
) -> Deltas:
    """Count parts' successes (``(batch_id, duration)``) in their roots (``roots[batch_id]``).

    Returns how the job's counters move (roots whose last part this was now count).
    """
    deltas: Deltas = {}
    for batch_id, duration in parts:
        add(deltas, part_ended(conn, roots[batch_id], failed_items=0, duration=duration, now=now))
    return deltas


def part_ended(
    conn: Connection, root: int, *, failed_items: int, duration: float, now: float
) -> Deltas:
    """Record that one of a root's parts ended; when it was the last, count the root.

    A root counts as failed if any of its items failed, else as succeeded, with its parts'
    predict time as its own.
    """
    open_parts, failed, total_time = conn.exec_driver_sql(
        "UPDATE batch SET open_parts = open_parts - 1, failed_items = failed_items + ?,"
        " duration = coalesce(duration, 0) + ? WHERE id = ?"
        " RETURNING open_parts, failed_items, duration",
        (failed_items, duration, root),
    ).one()
    if open_parts > 0:
        return {}
    conn.exec_driver_sql("UPDATE batch SET finished_time = ? WHERE id = ?", (now, root))
    if failed:
        return {"failed": 1}
    return {"succeeded": 1, "time_sum": float(total_time)}


def add(deltas: Deltas, more: Deltas) -> None:
    """Add ``more`` to ``deltas``, counter by counter."""
    for name, value in more.items():
        deltas[name] = deltas.get(name, 0) + value
