"""The store's promises, checked in-process on a real SQLite file: counts stay exact
however acks, expiries and re-leases interleave, and terminal statuses stick."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import running_job

from orchestrator.auth import Credentials
from orchestrator.context import Context
from orchestrator.delivery import handlers
from orchestrator.jobs.lifecycle import set_status
from orchestrator.settings import Settings
from orchestrator.status import TRANSITIONS, JobStatus, can_transition
from orchestrator.store import job_queries, queue, worker_queries
from orchestrator.store.engine import Store

JOB = "job-1"


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    """A context on a fresh store holding one running job of three queued batches."""
    settings = Settings(home=tmp_path)
    settings.ensure_dirs()
    store = Store(settings.db_path)
    with store.session() as session:
        job_queries.add(session, running_job(JOB), {})
    with store.write() as conn:
        queue.enqueue(conn, JOB, [(JOB, i, i, 1, f"[{i}]") for i in range(3)])
    yield Context(settings=settings, store=store, credentials=Credentials(tmp_path))
    store.close()


def counters(ctx: Context) -> dict[str, int]:
    with ctx.store.read() as conn:
        total, queued, leased, succeeded, failed, *_ = job_queries.counters(conn, JOB)
    return {"total": total, "queued": queued, "leased": leased, "succeeded": succeeded,
            "failed": failed}  # fmt: skip


def lease_one(ctx: Context, worker: str, now: float) -> int:
    with ctx.store.write() as conn:
        [lease] = queue.lease(conn, JOB, worker, now, 10.0, 1)
    return lease.batch_id


def ack(ctx: Context, batch_id: int, now: float) -> int:
    with ctx.store.write() as conn:
        return queue.ack_successes(conn, JOB, [queue.Success(batch_id, 0.1, "[1]")], now)


def test_a_late_ack_of_a_re_leased_batch_is_counted_once(ctx: Context) -> None:
    batch = lease_one(ctx, "w0", now=0.0)
    with ctx.store.write() as conn:
        assert queue.expire_leases(conn, JOB, now=11.0) == 1  # w0's lease ran out
    assert lease_one(ctx, "w1", now=12.0) == batch  # and the batch went to w1
    # w0 finished it anyway and acks late: that counts (the work was done) ...
    assert ack(ctx, batch, 13.0) == 1
    # ... and w1's ack of the same batch finds it finished.
    assert ack(ctx, batch, 14.0) == 0
    assert counters(ctx) == {"total": 3, "queued": 2, "leased": 0, "succeeded": 1, "failed": 0}


def test_an_ack_after_the_batch_failed_elsewhere_changes_nothing(ctx: Context) -> None:
    batch = lease_one(ctx, "w0", now=0.0)
    with ctx.store.write() as conn:
        queue.expire_leases(conn, JOB, now=11.0)
    lease_one(ctx, "w1", now=12.0)
    with ctx.store.write() as conn:
        failure = queue.Failure(batch, "ValueError: no", "tb")
        assert queue.ack_failure(conn, JOB, failure, "w1", retries=0, now=13.0) == "failed"
    assert ack(ctx, batch, 14.0) == 0
    assert counters(ctx) == {"total": 3, "queued": 2, "leased": 0, "succeeded": 0, "failed": 1}


def test_the_transition_table_covers_every_status_and_terminal_ones_stick() -> None:
    assert set(TRANSITIONS) == set(JobStatus)
    for status in JobStatus:
        if status.is_terminal:
            assert not [new for new in JobStatus if can_transition(status, new)], status
        else:
            assert {s for s in JobStatus if s.is_terminal} - {JobStatus.ENQUEUE_FAILED} <= set(
                TRANSITIONS[status]
            ), status


@pytest.mark.parametrize("terminal", [s for s in JobStatus if s.is_terminal])
def test_a_terminal_status_sticks_in_the_store(ctx: Context, terminal: JobStatus) -> None:
    with ctx.store.write() as conn:
        if terminal is JobStatus.ENQUEUE_FAILED:  # only an enqueuing job can fail to enqueue
            job_queries.write_status(conn, JOB, JobStatus.ENQUEUING, None, None)
        assert set_status(ctx, conn, JOB, terminal, "the end")
        for other in JobStatus:
            assert not set_status(ctx, conn, JOB, other, "again"), other
        assert job_queries.status_of(conn, JOB) == terminal


@pytest.mark.parametrize(
    ("want", "live", "expected"),
    [(256, 4, 1), (256, 1, 3), (2, 1, 2), (1, 4, 1)],
)
def test_a_lease_is_capped_at_the_workers_fair_share_of_the_queue(
    ctx: Context, want: int, live: int, expected: int
) -> None:
    with ctx.store.session() as session:
        for slot in range(live):
            worker_queries.add(session, JOB, slot, now=0.0)
    with ctx.store.read() as conn:
        # Three queued batches: shared by `live` workers, a lease takes ceil(3 / live).
        assert handlers._fair_share(conn, JOB, want) == expected
