"""Find the poison item (``"isolate_failures": true``): a batch that failed after its retries
is split in halves until each failing item stands alone.

Most tests run the real store in-process (the worker is a loop over ``queue``'s lease and
acks, so they are fast and exact); the last ones run a job end to end on the process backend
with the testbench predictor, which fails the items its ``fail_items`` config names.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli, Server, items_job, running_job

from orchestrator.auth import Credentials
from orchestrator.context import Context
from orchestrator.jobs import results
from orchestrator.jobs.lifecycle import read_counts
from orchestrator.settings import Settings
from orchestrator.store import isolation, job_queries, queue
from orchestrator.store.engine import Store

JOB = "job-1"
Poison = Callable[[list[Any]], bool]


def make_ctx(
    tmp_path: Path, batches: list[list[Any]], *, isolate: bool = True, retries: int = 0
) -> Context:
    """A context on a fresh store holding one running job of ``batches`` (items numbered
    in order across them)."""
    settings = Settings(home=tmp_path)
    settings.ensure_dirs()
    store = Store(settings.db_path)
    with store.session() as session:
        job = running_job(JOB, isolate_failures=isolate, retries=retries)
        job_queries.add(session, job, {})
    rows, first = [], 0
    for index, items in enumerate(batches):
        rows.append((JOB, index, first, len(items), json.dumps(items)))
        first += len(items)
    with store.write() as conn:
        queue.enqueue(conn, JOB, rows)
    return Context(settings=settings, store=store, credentials=Credentials(tmp_path))


@pytest.fixture
def tmp_ctx(tmp_path: Path) -> Iterator[Callable[..., Context]]:
    made: list[Context] = []

    def make(batches: list[list[Any]], **kwargs: Any) -> Context:
        made.append(make_ctx(tmp_path, batches, **kwargs))
        return made[-1]

    yield make
    for ctx in made:
        ctx.store.close()


def work(ctx: Context, poison: Poison, retries: int = 0, want: int = 4) -> int:
    """Play a worker until the queue is empty: ``predict`` raises on a payload ``poison``
    accepts and echoes the items otherwise. Return how many predict calls it made."""
    calls, now = 0, 1.0
    while True:
        with ctx.store.write() as conn:
            leases = queue.lease(conn, JOB, "w0", now, 30.0, want)
        if not leases:
            return calls
        for lease in leases:
            calls, now = calls + 1, now + 1
            items = json.loads(lease.payload)
            with ctx.store.write() as conn:
                if poison(items):
                    bad = [item for item in items if poison([item])]
                    failure = queue.Failure(lease.batch_id, f"ValueError: poison {bad}", "tb")
                    queue.ack_failure(conn, JOB, failure, "w0", retries, now)
                else:
                    echo = json.dumps([{"item": item} for item in items])
                    queue.ack_successes(conn, JOB, [queue.Success(lease.batch_id, 0.5, echo)], now)


def counters(ctx: Context) -> dict[str, int]:
    with ctx.store.read() as conn:
        counts = read_counts(conn, JOB)
        items = conn.exec_driver_sql(
            "SELECT items_succeeded, items_failed FROM job WHERE job_id = ?", (JOB,)
        ).one()
    return {
        "total": counts.total,
        "queued": counts.queued,
        "leased": counts.leased,
        "succeeded": counts.succeeded,
        "failed": counts.failed,
        "items_succeeded": items[0],
        "items_failed": items[1],
    }


def result_lines(ctx: Context) -> list[dict[str, Any]]:
    return [
        json.loads(line) for page in results.iter_results(ctx, JOB) for line in page.splitlines()
    ]


def poison_of(*bad: int) -> Poison:
    return lambda items: any(item in bad for item in items)


def test_two_poison_items_in_a_batch_of_64_stand_alone_and_62_results_are_kept(
    tmp_ctx: Callable[..., Context],
) -> None:
    ctx = tmp_ctx([list(range(64))])

    calls = work(ctx, poison_of(13, 50))

    assert counters(ctx) == {
        "total": 1, "queued": 0, "leased": 0, "succeeded": 0, "failed": 1,
        "items_succeeded": 62, "items_failed": 2,
    }  # fmt: skip
    lines = result_lines(ctx)
    assert [line["item_index"] for line in lines] == [i for i in range(64) if i not in (13, 50)]
    assert [line["result"]["item"] for line in lines] == [line["item_index"] for line in lines]
    assert {line["batch_index"] for line in lines} == {0}  # the batch the parts come from
    ledger = results.failed_batches(ctx, JOB)
    assert [(e["first_item"], e["size"], e["payload"]) for e in ledger] == [
        (13, 1, [13]),
        (50, 1, [50]),
    ]
    assert [e["error"] for e in ledger] == ["ValueError: poison [13]", "ValueError: poison [50]"]
    assert {e["isolation"] for e in ledger} == {isolation.ISOLATED}
    assert {e["batch_index"] for e in ledger} == {0}
    assert all(e["part_index"] < 0 for e in ledger)
    # The whole batch once, its two halves, then 5 levels of 2 calls in each half.
    assert calls == 1 + 2 + 2 * 5 * 2
    assert calls - 1 <= isolation.bound(64, 1.0)


def test_the_bound_stops_a_batch_where_every_item_fails_and_says_so(
    tmp_ctx: Callable[..., Context],
) -> None:
    ctx = tmp_ctx([list(range(64))])

    calls = work(ctx, lambda items: True)

    limit = isolation.bound(64, 1.0)
    assert limit == 64
    assert calls - 1 == limit  # every call the budget gave, and not one more
    assert counters(ctx) == {
        "total": 1, "queued": 0, "leased": 0, "succeeded": 0, "failed": 1,
        "items_succeeded": 0, "items_failed": 64,
    }  # fmt: skip
    ledger = results.failed_batches(ctx, JOB)
    assert sum(e["size"] for e in ledger) == 64  # every item is in the ledger, once
    assert [e["first_item"] for e in ledger] == sorted(e["first_item"] for e in ledger)
    stopped = [e for e in ledger if e["size"] > 1]
    assert stopped, ledger
    assert {e["isolation"] for e in stopped} == {
        "isolation stopped: bound of 64 predict calls reached"
    }
    assert {e["isolation"] for e in ledger if e["size"] == 1} <= {isolation.ISOLATED}
    assert result_lines(ctx) == []


def test_a_batch_whose_halves_both_succeed_counts_as_succeeded(
    tmp_ctx: Callable[..., Context],
) -> None:
    ctx = tmp_ctx([[0, 1, 2, 3], [4, 5]])

    # Only the whole first batch fails (say, it runs out of memory); each half passes.
    work(ctx, lambda items: len(items) == 4)

    assert counters(ctx) == {
        "total": 2, "queued": 0, "leased": 0, "succeeded": 2, "failed": 0,
        "items_succeeded": 6, "items_failed": 0,
    }  # fmt: skip
    assert [line["item_index"] for line in result_lines(ctx)] == list(range(6))
    assert results.failed_batches(ctx, JOB) == []
    with ctx.store.read() as conn:
        time_sum = conn.exec_driver_sql("SELECT time_sum FROM job").scalar()
    assert time_sum == pytest.approx(0.5 + 2 * 0.5)  # the second batch, and the halves


def test_results_and_ledger_interleave_parts_with_other_batches_in_item_order(
    tmp_ctx: Callable[..., Context],
) -> None:
    ctx = tmp_ctx([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13]])

    work(ctx, poison_of(5, 12))

    lines = result_lines(ctx)
    assert [line["item_index"] for line in lines] == [i for i in range(14) if i not in (5, 12)]
    assert [line["batch_index"] for line in lines] == [0] * 4 + [1] * 3 + [2] * 4 + [3]
    ledger = results.failed_batches(ctx, JOB)
    assert [(e["batch_index"], e["payload"]) for e in ledger] == [(1, [5]), (3, [12])]
    assert counters(ctx)["failed"] == 2 and counters(ctx)["succeeded"] == 2


def test_retries_come_first_and_parts_are_not_retried(tmp_ctx: Callable[..., Context]) -> None:
    ctx = tmp_ctx([[0, 1, 2, 3]], retries=2)

    calls = work(ctx, poison_of(2), retries=2)

    assert calls == 3 + 4  # the batch 3 times, then [0, 1] [2, 3] [2] [3] once each
    [entry] = results.failed_batches(ctx, JOB)
    assert (entry["payload"], entry["attempts"], entry["errors"]) == ([2], 1, 1)


def test_without_isolate_failures_a_batch_fails_whole_and_items_still_count(
    tmp_ctx: Callable[..., Context],
) -> None:
    ctx = tmp_ctx([[0, 1, 2, 3], [4, 5]], isolate=False)

    assert work(ctx, poison_of(2)) == 2

    assert counters(ctx) == {
        "total": 2, "queued": 0, "leased": 0, "succeeded": 1, "failed": 1,
        "items_succeeded": 2, "items_failed": 4,
    }  # fmt: skip
    [entry] = results.failed_batches(ctx, JOB)
    assert (entry["payload"], entry["isolation"], entry["part_index"]) == ([0, 1, 2, 3], None, None)


def test_a_part_re_leased_after_its_worker_died_is_counted_once(
    tmp_ctx: Callable[..., Context],
) -> None:
    ctx = tmp_ctx([[0, 1]])
    with ctx.store.write() as conn:
        [root] = queue.lease(conn, JOB, "w0", 0.0, 10.0, 1)
        queue.ack_failure(conn, JOB, queue.Failure(root.batch_id, "E", "tb"), "w0", 0, 1.0)
        first, second = queue.lease(conn, JOB, "w0", 2.0, 10.0, 2)
        assert (first.payload, second.payload) == ("[0]", "[1]")
        assert queue.expire_leases(conn, JOB, now=20.0) == 2  # w0 died holding both parts
        again = queue.lease(conn, JOB, "w1", 21.0, 10.0, 2)
        assert [lease.batch_id for lease in again] == [first.batch_id, second.batch_id]
        # w0's late success of the first part counts; w1's of the same part finds it ended.
        done = queue.Success(first.batch_id, 0.1, '["a"]')
        assert queue.ack_successes(conn, JOB, [done], 22.0) == 1
        assert queue.ack_successes(conn, JOB, [done], 23.0) == 0
        # A failure reported twice (a retried report) counts once.
        twice = queue.Failure(second.batch_id, "E", "tb")
        assert queue.ack_failure(conn, JOB, twice, "w1", 0, 24.0) == "failed"
        assert queue.ack_failure(conn, JOB, twice, "w1", 0, 25.0) is None
    assert counters(ctx) == {
        "total": 1, "queued": 0, "leased": 0, "succeeded": 0, "failed": 1,
        "items_succeeded": 1, "items_failed": 1,
    }  # fmt: skip
    with ctx.store.read() as conn:
        assert read_counts(conn, JOB).batches_done


def test_parts_wait_for_the_queue_transport_s_publisher(tmp_ctx: Callable[..., Context]) -> None:
    ctx = tmp_ctx([[0, 1, 2, 3]])
    with ctx.store.write() as conn:
        [batch] = queue.unpublished(conn, JOB, 10)
        queue.mark_published(conn, [batch])
        queue.record_leases(conn, JOB, "w0", [batch.batch_id])
        failure = queue.Failure(batch.batch_id, "E", "tb")
        assert queue.ack_failure(conn, JOB, failure, "w0", 0, 1.0) == "split"
        parts = queue.unpublished(conn, JOB, 10)
    assert [(part.payload, part.attempt) for part in parts] == [("[0, 1]", 1), ("[2, 3]", 1)]
    assert all(part.index < 0 for part in parts)


@pytest.mark.parametrize(
    ("size", "factor", "expected"),
    [(1, 1.0, 0), (2, 1.0, 2), (3, 1.0, 4), (64, 1.0, 64), (64, 0.0, 12), (64, 2.0, 128),
     (64, 50.0, 128), (64, float("nan"), 12), (64, float("inf"), 128)],
)  # fmt: skip
def test_the_bound(size: int, factor: float, expected: int) -> None:
    assert isolation.bound(size, factor) == expected


def test_an_old_database_gets_the_new_columns(tmp_path: Path) -> None:
    db = tmp_path / "cortex.db"
    Store(db).close()
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("DROP INDEX ix_batch_parts")
        for column in ("root_id", "parent_id", "open_parts", "isolation"):
            conn.execute(f"ALTER TABLE batch DROP COLUMN {column}")
        for column in ("isolate_failures", "items_succeeded", "items_failed"):
            conn.execute(f"ALTER TABLE job DROP COLUMN {column}")
    conn.close()
    Store(db).close()
    with sqlite3.connect(db) as conn:
        batch = {row[1] for row in conn.execute("PRAGMA table_info(batch)")}
        job = {row[1] for row in conn.execute("PRAGMA table_info(job)")}
        indexes = {row[1] for row in conn.execute("PRAGMA index_list(batch)")}
    conn.close()
    assert {"root_id", "parent_id", "open_parts", "isolation"} <= batch
    assert {"isolate_failures", "items_succeeded", "items_failed"} <= job
    assert "ix_batch_parts" in indexes


# --- end to end, on the process backend (the server fixture's for this module) -------------


def test_a_job_finds_two_poison_items_in_a_batch_of_64(server: Server, testbench: str) -> None:
    body = items_job(list(range(64)), batch_size=64, config={"fail_items": [13, 50]})
    job = server.submit(testbench, {**body, "isolate_failures": True})

    status = server.wait(testbench, job["job_id"])

    assert status["status"] == "status_completed_with_failures", status
    assert status["batch_metrics"]["failed"] == 1 and status["batch_metrics"]["total"] == 1
    assert status["batch_metrics"]["succeeded"] == 0
    assert status["item_metrics"] == {"succeeded": 62, "failed": 2}
    assert status["isolate_failures"] is True
    results_ = server.results(testbench, job["job_id"])
    assert [r["item_index"] for r in results_] == [i for i in range(64) if i not in (13, 50)]
    assert [r["result"]["item"] for r in results_] == [r["item_index"] for r in results_]
    ledger = server.failed(testbench, job["job_id"])
    assert [(e["payload"], e["isolation"]) for e in ledger] == [
        ([13], "isolated"),
        ([50], "isolated"),
    ]
    assert [e["error"] for e in ledger] == [
        "ValueError: item 13 is in fail_items",
        "ValueError: item 50 is in fail_items",
    ]
    assert all("Traceback (most recent call last)" in e["traceback"] for e in ledger)


def test_a_job_whose_every_item_fails_stops_at_the_bound(server: Server, testbench: str) -> None:
    body = items_job(list(range(16)), batch_size=16, config={"fail_items": list(range(16))})
    job = server.submit(testbench, {**body, "isolate_failures": True})

    status = server.wait(testbench, job["job_id"])

    assert status["status"] == "status_completed_with_failures", status
    assert status["item_metrics"] == {"succeeded": 0, "failed": 16}
    ledger = server.failed(testbench, job["job_id"])
    assert sum(e["size"] for e in ledger) == 16
    assert "isolation stopped: bound of 16 predict calls reached" in {
        e["isolation"] for e in ledger
    }
    assert server.logs(testbench, job["job_id"]).count("fails on item") == 1 + 16


# --- the CLI ----------------------------------------------------------------------------------


def test_submit_isolate_failures_sends_the_option(tmp_path: Path) -> None:
    from cortex_tui.cli import submit
    from cortex_tui.cli.main import build_parser

    items = tmp_path / "items.json"
    items.write_text("[1, 2, 3]")
    flagged = build_parser().parse_args(
        ["submit", "api", "--items", str(items), "--isolate-failures"]
    )
    plain = build_parser().parse_args(["submit", "api", "--items", str(items)])

    assert submit.build_body(flagged)["isolate_failures"] is True
    assert "isolate_failures" not in submit.build_body(plain)


def test_failed_shows_each_isolated_item_and_where_the_bound_stopped() -> None:
    from cortex_tui.cli import failed

    entry = {"batch_index": 7, "attempts": 1, "worker": "w0", "error": "ValueError: x"}
    text = failed.render(
        [
            {**entry, "first_item": 13, "size": 1, "payload": [13], "isolation": "isolated"},
            {
                **entry,
                "first_item": 32,
                "size": 16,
                "payload": list(range(32, 48)),
                "isolation": "isolation stopped: bound of 64 predict calls reached",
            },
            {**entry, "batch_index": 9, "first_item": 90, "size": 2, "payload": [90, 91]},
        ],
        traceback=False,
    )

    assert "batch 7, item 13 (isolated): 1 attempt, last on worker w0" in text
    assert "batch 7, items 32-47 (isolation stopped: bound of 64 predict calls reached)" in text
    assert "batch 9 (items 90-91): 1 attempt" in text


def test_submit_wait_says_what_isolation_saved_and_where_the_results_are(
    server: Server, testbench: str, server_cli: Cli, tmp_path: Path
) -> None:
    items = tmp_path / "items.json"
    items.write_text(json.dumps(list(range(8))))

    run = server_cli(
        *("submit", testbench, "--items", str(items), "--batch-size", "8"),
        *("--config", "fail_items=[5]", "--isolate-failures", "--wait"),
    )

    assert run.code == 1, run.err
    assert "\nitems: 7 succeeded, 1 failed (isolate_failures" in run.out
    assert f"\nresults: cortex-tui --server {server.url} results {testbench} " in run.out
