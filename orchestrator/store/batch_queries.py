"""Statements that read a job's finished batches back: results pages, the failed ledger and
the failed batches a retry re-runs."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from orchestrator.status import BatchState


def results_page(conn: Connection, job_id: str, after: int, limit: int) -> list[tuple[Any, ...]]:
    """Return ``idx, first_item, size, result`` of succeeded batches past index ``after``."""
    return list(
        tuple(row)
        for row in conn.exec_driver_sql(
            "SELECT idx, first_item, size, result FROM batch"
            " WHERE job_id = ? AND idx > ? AND state = ? AND result IS NOT NULL"
            " ORDER BY idx LIMIT ?",
            (job_id, after, BatchState.SUCCEEDED, limit),
        ).all()
    )


def failed(conn: Connection, job_id: str, limit: int) -> list[tuple[Any, ...]]:
    """Return the job's own failed batches (not parts), in index order, with what the
    ledger shows."""
    return list(
        tuple(row)
        for row in conn.exec_driver_sql(
            "SELECT id, idx, first_item, size, payload, attempts, errors, worker_id, error,"
            " traceback, finished_time, NULL, NULL FROM batch"
            " WHERE job_id = ? AND state = ? AND idx >= 0 ORDER BY idx LIMIT ?",
            (job_id, BatchState.FAILED, limit),
        ).all()
    )


# Isolation's parts (``orchestrator.store.isolation``), in item order through their own
# partial index; each names the index of the job's batch it comes from (its root).
_PARTS = "FROM batch b INDEXED BY ix_batch_parts JOIN batch r ON r.id = b.root_id"


def failed_parts(conn: Connection, job_id: str, limit: int) -> list[tuple[Any, ...]]:
    """Return the job's failed parts in item order, as ``failed`` does, with why each stands
    (``isolation``) and its own index."""
    return list(
        tuple(row)
        for row in conn.exec_driver_sql(
            "SELECT b.id, r.idx, b.first_item, b.size, b.payload, b.attempts, b.errors,"
            " b.worker_id, b.error, b.traceback, b.finished_time, b.isolation, b.idx"
            f" {_PARTS} WHERE b.job_id = ? AND b.root_id IS NOT NULL AND b.state = ?"
            " ORDER BY b.first_item LIMIT ?",
            (job_id, BatchState.FAILED, limit),
        ).all()
    )


def part_results_page(
    conn: Connection, job_id: str, after_item: int, limit: int
) -> list[tuple[Any, ...]]:
    """Return ``root idx, first_item, size, result`` of succeeded parts past item
    ``after_item``, in item order."""
    return list(
        tuple(row)
        for row in conn.exec_driver_sql(
            f"SELECT r.idx, b.first_item, b.size, b.result {_PARTS}"
            " WHERE b.job_id = ? AND b.root_id IS NOT NULL AND b.first_item > ?"
            " AND b.state = ? AND b.result IS NOT NULL ORDER BY b.first_item LIMIT ?",
            (job_id, after_item, BatchState.SUCCEEDED, limit),
        ).all()
    )


def failed_page(conn: Connection, job_id: str, after: int, limit: int) -> list[tuple[Any, ...]]:
    """Return ``idx, first_item, size, payload`` of the job's own failed batches (not parts)
    past index ``after``."""
    return list(
        tuple(row)
        for row in conn.exec_driver_sql(
            "SELECT idx, first_item, size, payload FROM batch"
            " WHERE job_id = ? AND state = ? AND idx > ? ORDER BY idx LIMIT ?",
            (job_id, BatchState.FAILED, max(after, -1), limit),
        ).all()
    )


def failed_parts_page(
    conn: Connection, job_id: str, after_item: int, limit: int
) -> list[tuple[Any, ...]]:
    """Return ``first_item, size, payload`` of the job's failed parts (isolation's) past item
    ``after_item``, in item order."""
    return list(
        tuple(row)
        for row in conn.exec_driver_sql(
            "SELECT first_item, size, payload FROM batch INDEXED BY ix_batch_parts"
            " WHERE job_id = ? AND root_id IS NOT NULL AND first_item > ? AND state = ?"
            " ORDER BY first_item LIMIT ?",
            (job_id, after_item, BatchState.FAILED, limit),
        ).all()
    )


def failed_spans(conn: Connection, job_id: str) -> list[tuple[int, int]]:
    """Return ``first_item, size`` of what failed in the job, in item order: its own failed
    batches, and the failed parts of the batches isolation split."""
    own = conn.exec_driver_sql(
        "SELECT first_item, size FROM batch WHERE job_id = ? AND state = ? AND idx >= 0",
        (job_id, BatchState.FAILED),
    ).all()
    parts = conn.exec_driver_sql(
        "SELECT first_item, size FROM batch INDEXED BY ix_batch_parts"
        " WHERE job_id = ? AND root_id IS NOT NULL AND state = ?",
        (job_id, BatchState.FAILED),
    ).all()
    return sorted((int(first), int(size)) for first, size in [*own, *parts])


def one(conn: Connection, job_id: str, index: int) -> tuple[Any, ...] | None:
    """Return ``id, first_item, size, payload, state, error, traceback`` of one batch."""
    row = conn.exec_driver_sql(
        "SELECT id, first_item, size, payload, state, error, traceback FROM batch"
        " WHERE job_id = ? AND idx = ?",
        (job_id, index),
    ).first()
    return None if row is None else tuple(row)
