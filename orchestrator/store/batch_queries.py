"""Statements that read a job's finished batches back: results pages and the failed ledger."""

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
    """Return the job's failed batches, in index order, with what the ledger shows."""
    return list(
        tuple(row)
        for row in conn.exec_driver_sql(
            "SELECT id, idx, first_item, size, payload, attempts, errors, worker_id, error,"
            " traceback, finished_time FROM batch WHERE job_id = ? AND state = ?"
            " ORDER BY idx LIMIT ?",
            (job_id, BatchState.FAILED, limit),
        ).all()
    )


def one(conn: Connection, job_id: str, index: int) -> tuple[Any, ...] | None:
    """Return ``id, first_item, size, payload, state, error, traceback`` of one batch."""
    row = conn.exec_driver_sql(
        "SELECT id, first_item, size, payload, state, error, traceback FROM batch"
        " WHERE job_id = ? AND idx = ?",
        (job_id, index),
    ).first()
    return None if row is None else tuple(row)
