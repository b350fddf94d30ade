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
from orchestrator.errors import InvalidRequest
from orchestrator.jobs.lifecycle import set_status
from orchestrator.settings import Settings
from orchestrator.status import TRANSITIONS, JobStatus, WorkerState, can_transition
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


# --- the queue transport (aws): messages, attempts, fencing ---------------------------------


def publish_all(ctx: Context) -> list[queue.Unpublished]:
    with ctx.store.write() as conn:
        batches = queue.unpublished(conn, JOB, 100)
        queue.mark_published(conn, batches)
    return batches


def remote_next(ctx: Context, worker_id: str, **event: object) -> None:
    handlers.record_remote_next(ctx, worker_id, {"kind": "next", **event})


def new_worker(ctx: Context) -> str:
    with ctx.store.session() as session:
        return worker_queries.add(session, JOB, 0, now=0.0)


def test_each_queued_batch_is_published_once_with_its_attempt(ctx: Context) -> None:
    first = publish_all(ctx)

    assert [(b.index, b.attempt) for b in first] == [(0, 1), (1, 1), (2, 1)]
    assert publish_all(ctx) == []  # nothing queued lacks a message any more


def test_events_out_of_order_count_each_batch_once_and_keep_counts_exact(ctx: Context) -> None:
    w0 = new_worker(ctx)
    [b0, b1, _] = [b.batch_id for b in publish_all(ctx)]
    ok = {"duration": 0.1, "result": [1]}
    # The ack of b0 overtakes the lease that announced it (standard queues reorder).
    remote_next(ctx, w0, acks=[{"batch_id": b0, "attempt": 1, **ok}])
    remote_next(ctx, w0, leases=[{"batch_id": b0, "attempt": 1}, {"batch_id": b1, "attempt": 1}])
    # The same ack delivered twice changes nothing.
    remote_next(ctx, w0, acks=[{"batch_id": b0, "attempt": 1, **ok}])

    assert counters(ctx) == {"total": 3, "queued": 1, "leased": 1, "succeeded": 1, "failed": 0}


def test_a_retried_batch_gets_a_new_message_and_the_old_attempt_is_fenced_off(
    ctx: Context,
) -> None:
    with ctx.store.write() as conn:  # one retry per batch
        conn.exec_driver_sql("UPDATE job SET retries = 1 WHERE job_id = ?", (JOB,))
    w0, w1 = new_worker(ctx), new_worker(ctx)
    b0 = publish_all(ctx)[0].batch_id
    remote_next(ctx, w0, leases=[{"batch_id": b0, "attempt": 1}])
    failed = {"batch_id": b0, "attempt": 1, "error": "ValueError: x", "traceback": "tb"}
    remote_next(ctx, w0, acks=[failed])

    [again] = publish_all(ctx)  # its message was deleted: a new one, attempt 2
    assert (again.batch_id, again.attempt) == (b0, 2)
    remote_next(ctx, w1, leases=[{"batch_id": b0, "attempt": 2}])
    # A late copy of attempt 1 fails or leases nothing now.
    remote_next(ctx, w0, acks=[failed], leases=[{"batch_id": b0, "attempt": 1}])

    assert counters(ctx) == {"total": 3, "queued": 2, "leased": 1, "succeeded": 0, "failed": 0}
    with ctx.store.read() as conn:
        assert queue.messages_of(conn, [b0]) == {b0: queue.Message(2, published=True)}


def test_leases_of_a_worker_already_ended_go_back_to_the_others(ctx: Context) -> None:
    w0 = new_worker(ctx)
    b0 = publish_all(ctx)[0].batch_id
    with ctx.store.write() as conn:  # its end was seen before its last event arrived
        worker_queries.write_end(conn, w0, WorkerState.FAILED, "crash", "gone", 1, 1.0)

    remote_next(ctx, w0, leases=[{"batch_id": b0, "attempt": 1}])

    assert counters(ctx) == {"total": 3, "queued": 3, "leased": 0, "succeeded": 0, "failed": 0}


def test_a_bad_remote_event_is_refused_whole_naming_the_field(ctx: Context) -> None:
    w0 = new_worker(ctx)
    with pytest.raises(InvalidRequest, match=r"acks\[0\]: batch_id and attempt"):
        remote_next(ctx, w0, acks=[{"batch_id": "x", "attempt": 1}])
    assert counters(ctx) == {"total": 3, "queued": 3, "leased": 0, "succeeded": 0, "failed": 0}


def test_a_failure_of_a_batch_still_queued_keeps_every_ack_of_its_event(ctx: Context) -> None:
    # The failure overtook the lease that announced it; the event also acks another batch.
    with ctx.store.write() as conn:
        conn.exec_driver_sql("UPDATE job SET retries = 1 WHERE job_id = ?", (JOB,))
    w0 = new_worker(ctx)
    [b0, b1, _] = [b.batch_id for b in publish_all(ctx)]
    failed = {"batch_id": b0, "attempt": 1, "error": "ValueError: x", "traceback": "tb"}

    remote_next(ctx, w0, acks=[failed, {"batch_id": b1, "attempt": 1, "duration": 0.1}])

    assert counters(ctx) == {"total": 3, "queued": 2, "leased": 0, "succeeded": 1, "failed": 0}
    assert [b.batch_id for b in publish_all(ctx)] == [b0]  # its retry gets a new message


def test_one_batch_named_twice_in_an_event_counts_once(ctx: Context) -> None:
    # Two copies of one message (sent again after a restart) received together.
    w0 = new_worker(ctx)
    b0 = publish_all(ctx)[0].batch_id
    lease = {"batch_id": b0, "attempt": 1}
    remote_next(ctx, w0, leases=[lease, lease])
    assert counters(ctx) == {"total": 3, "queued": 2, "leased": 1, "succeeded": 0, "failed": 0}

    ok = {"batch_id": b0, "attempt": 1, "duration": 0.1, "result": [1]}
    remote_next(ctx, w0, acks=[ok, ok])

    assert counters(ctx) == {"total": 3, "queued": 2, "leased": 0, "succeeded": 1, "failed": 0}


def test_a_failure_reported_twice_spends_one_retry(ctx: Context) -> None:
    with ctx.store.write() as conn:
        conn.exec_driver_sql("UPDATE job SET retries = 1 WHERE job_id = ?", (JOB,))
    w0 = new_worker(ctx)
    b0 = publish_all(ctx)[0].batch_id
    failed = {"batch_id": b0, "attempt": 1, "error": "ValueError: x", "traceback": "tb"}

    remote_next(ctx, w0, acks=[failed])
    remote_next(ctx, w0, acks=[failed], leases=[{"batch_id": b0, "attempt": 1}])

    assert counters(ctx) == {"total": 3, "queued": 3, "leased": 0, "succeeded": 0, "failed": 0}
    assert [(b.batch_id, b.attempt) for b in publish_all(ctx)] == [(b0, 2)]


def test_an_event_about_a_message_not_yet_recorded_waits_and_writes_nothing(
    ctx: Context,
) -> None:
    w0 = new_worker(ctx)
    with ctx.store.read() as conn:  # sent, but mark_published has not committed yet
        batch = queue.unpublished(conn, JOB, 1)[0]

    with pytest.raises(handlers.NotYet):
        remote_next(ctx, w0, leases=[{"batch_id": batch.batch_id, "attempt": 1}])

    assert counters(ctx) == {"total": 3, "queued": 3, "leased": 0, "succeeded": 0, "failed": 0}


def test_a_remote_workers_gpu_samples_are_kept_and_bad_ones_refused(ctx: Context) -> None:
    w0 = new_worker(ctx)
    sample = {"index": 0, "uuid": "GPU-1", "utilization_pct": 50.0,
              "memory_used_bytes": 1 << 30, "memory_total_bytes": 80 << 30}  # fmt: skip

    handlers.record_remote_gpus(ctx, w0, {"kind": "gpus", "gpus": [sample]})
    with pytest.raises(InvalidRequest, match="gpus"):
        handlers.record_remote_gpus(ctx, w0, {"kind": "gpus", "gpus": "all of them"})

    with ctx.store.session() as session:
        [worker] = worker_queries.of_job(session, JOB)
    assert worker.gpus == [sample]


def test_a_heartbeat_with_bad_gpu_samples_still_keeps_its_leases(ctx: Context) -> None:
    w0 = new_worker(ctx)
    batch = lease_one(ctx, w0, now=0.0)

    answer = handlers.heartbeat(ctx, w0, {"batch_ids": [batch], "gpus": "all of them"})

    assert answer["held"] == 1  # the samples are dropped (and logged), the lease kept
    assert answer["gpus_dropped"].startswith("gpus: must be a list")
    with ctx.store.session() as session:
        [worker] = worker_queries.of_job(session, JOB)
    assert worker.gpus is None


def test_a_failure_reported_after_the_batch_went_to_another_worker_is_ignored(
    ctx: Context,
) -> None:
    batch = lease_one(ctx, "w0", now=0.0)
    with ctx.store.write() as conn:
        queue.expire_leases(conn, JOB, now=11.0)  # w0's lease ran out
    assert lease_one(ctx, "w1", now=12.0) == batch

    with ctx.store.write() as conn:  # w0's predict raised after all: w1 runs the batch now
        state = queue.ack_failure(conn, JOB, queue.Failure(batch, "E", "tb"), "w0", 0, 13.0)

    assert state is None
    assert counters(ctx) == {"total": 3, "queued": 2, "leased": 1, "succeeded": 0, "failed": 0}
    assert ack(ctx, batch, 14.0) == 1  # w1's success counts


def test_acks_reach_the_metrics_once_their_write_committed(ctx: Context) -> None:
    with pytest.raises(RuntimeError), handlers._observed_once_committed(ctx) as observe:
        observe("succeeded", 0.5, 0.1)
        raise RuntimeError("the write failed, and will be done again")
    with handlers._observed_once_committed(ctx) as observe:
        observe("succeeded", 0.5, 0.1)
        observe("failed", None, 0.2)  # a lease of unknown time: predict time only

    predict, lease_to_ack = ctx.telemetry.predict, ctx.telemetry.lease_to_ack
    assert predict["succeeded"].read()[2] == 1  # the rolled-back one never counted
    assert lease_to_ack["succeeded"].read()[2] == 1
    assert (predict["failed"].read()[1:], lease_to_ack["failed"].read()[2]) == ((0.2, 1), 0)
