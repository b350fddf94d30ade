"""Every statement on a job's hot path finds its batches through an index, never a scan.

The per-batch work (lease, ack, retry, heartbeat, release, expiry, counts, fair share)
runs through the real store on a real SQLite file holding a job of 20,000 batches; each
statement SQLite saw is then explained. A full scan of ``batch``, or a lookup of known
batch ids that does not go by primary key, makes a job's cost grow with its size.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from conftest import running_job
from sqlalchemy import event

from orchestrator.delivery import handlers
from orchestrator.jobs import lifecycle
from orchestrator.store import batch_queries, queue
from orchestrator.store.engine import Store
from orchestrator.store.models import WorkerRecord

JOB, WORKER, BATCHES = "job-1", "job-1-w0", 20_000
_BY_ID = re.compile(r"(?<![\w.])id (IN \(|= )")


def _store_with_a_job(path: Path) -> Store:
    store = Store(path)
    with store.session() as session:
        session.add(running_job(JOB, retries=1))
        session.add(
            WorkerRecord(worker_id=WORKER, job_id=JOB, slot=0, state="running", created_time=0.0)
        )
        session.commit()
    with store.write() as conn:
        conn.exec_driver_sql(
            "INSERT INTO batch (job_id, idx, first_item, size, payload, state, attempts, errors)"
            " VALUES (?, ?, ?, 1, ?, 'queued', 0, 0)",
            [(JOB, i, i, f"[{i}]") for i in range(BATCHES)],
        )
        conn.exec_driver_sql(
            "UPDATE job SET total = ?, queued = ? WHERE job_id = ?", (BATCHES, BATCHES, JOB)
        )
    return store


def _hot_path_statements(store: Store) -> list[str]:
    """Run one round of the per-batch work; return the SQL SQLite executed, values inlined."""
    seen: list[str] = []
    store.engine.dispose()  # new connections from here on carry the trace
    event.listen(store.engine, "connect", lambda dbapi, _: dbapi.set_trace_callback(seen.append))
    with store.write() as conn:
        count = handlers._fair_share(conn, JOB, 50)
        leases = queue.lease(conn, JOB, WORKER, 100.0, 30.0, count)
        ids = [lease.batch_id for lease in leases]
        queue.heartbeat(conn, JOB, WORKER, ids, 101.0, 30.0)
        queue.ack_successes(conn, JOB, [queue.Success(i, 0.01, "[1]") for i in ids[:40]], now=102.0)
        failure = queue.Failure(ids[40], "ValueError: x", "tb")
        queue.ack_failure(conn, JOB, failure, WORKER, 1, 102.0)
        queue.release(conn, JOB, WORKER, ids[41:45])
        queue.expire_leases(conn, JOB, 200.0)
        queue.release_worker(conn, JOB, WORKER)
        lifecycle.read_counts(conn, JOB)
    return [sql for sql in seen if re.search(r"\bbatch\b", sql)]


def _queue_transport_statements(store: Store) -> list[str]:
    """Run one round of the queue transport's per-tick work (publish, leases reported in
    events, pace); return the SQL SQLite executed on ``batch``, values inlined."""
    seen: list[str] = []
    store.engine.dispose()
    event.listen(store.engine, "connect", lambda dbapi, _: dbapi.set_trace_callback(seen.append))
    with store.write() as conn:
        batches = queue.unpublished(conn, JOB, 10)
        queue.mark_published(conn, batches)
        queue.waiting_on_the_queue(conn, JOB)
        queue.pace_of(conn, JOB)
        ids = [batch.batch_id for batch in batches]
        queue.messages_of(conn, ids)
        queue.record_leases(conn, JOB, WORKER, ids)
        queue.ack_successes(conn, JOB, [queue.Success(i, 0.01, "[1]") for i in ids[:5]], now=1.0)
        queue.republish(conn, ids[5])
    return [sql for sql in seen if re.search(r"\bbatch\b", sql)]


def _isolation_statements(store: Store) -> list[str]:
    """Run one search for a poison item (``isolation``) in a batch of 8 among the 20,000,
    then read its results and ledger back; return the SQL SQLite executed on ``batch``."""
    with store.write() as conn:
        conn.exec_driver_sql("UPDATE job SET isolate_failures = 1 WHERE job_id = ?", (JOB,))
        conn.exec_driver_sql(
            "UPDATE batch SET size = 8, payload = '[0,1,2,3,4,5,6,7]' WHERE job_id = ? AND idx = 0",
            (JOB,),
        )
    seen: list[str] = []
    store.engine.dispose()
    event.listen(store.engine, "connect", lambda dbapi, _: dbapi.set_trace_callback(seen.append))
    with store.write() as conn:
        [root] = queue.lease(conn, JOB, WORKER, 100.0, 30.0, 1)
        failure = queue.Failure(root.batch_id, "ValueError: 5", "tb")
        queue.ack_failure(conn, JOB, failure, WORKER, 1, 101.0)  # retried once
        queue.lease(conn, JOB, WORKER, 102.0, 30.0, 1)
        queue.ack_failure(conn, JOB, failure, WORKER, 1, 103.0)  # split
        first, second = queue.lease(conn, JOB, WORKER, 104.0, 30.0, 2)
        queue.ack_successes(conn, JOB, [queue.Success(first.batch_id, 0.01, "[1]")], now=105.0)
        poison = queue.Failure(second.batch_id, "ValueError: 5", "tb")
        queue.ack_failure(conn, JOB, poison, WORKER, 1, 105.0)  # split again
        batch_queries.part_results_page(conn, JOB, -1, 500)
        batch_queries.failed_parts(conn, JOB, 1000)
        batch_queries.failed(conn, JOB, 1000)
    return [sql for sql in seen if re.search(r"\bbatch\b", sql)]


def _assert_no_scans(db: Path, statements: list[str]) -> None:
    explain = sqlite3.connect(db)
    try:
        for sql in statements:
            plan = [row[3] for row in explain.execute(f"EXPLAIN QUERY PLAN {sql}")]
            assert not any(step.startswith("SCAN batch") for step in plan), (sql, plan)
            assert not any("TEMP B-TREE" in step for step in plan), (sql, plan)
            if _BY_ID.search(sql):
                assert any("INTEGER PRIMARY KEY" in step for step in plan), (sql, plan)
    finally:
        explain.close()


def test_the_hot_path_never_scans_the_batch_table(tmp_path: Path) -> None:
    db = tmp_path / "cortex.db"
    statements = _hot_path_statements(_store_with_a_job(db))
    assert len(statements) >= 8, statements
    _assert_no_scans(db, statements)


def test_the_queue_transport_never_scans_the_batch_table(tmp_path: Path) -> None:
    db = tmp_path / "cortex.db"
    statements = _queue_transport_statements(_store_with_a_job(db))
    assert len(statements) >= 6, statements
    _assert_no_scans(db, statements)


def test_the_search_for_a_poison_item_never_scans_the_batch_table(tmp_path: Path) -> None:
    db = tmp_path / "cortex.db"
    statements = _isolation_statements(_store_with_a_job(db))
    assert any(sql.startswith("INSERT INTO batch") for sql in statements), statements
    assert any("ix_batch_parts" in sql for sql in statements), statements
    _assert_no_scans(db, statements)
