"""Reading back a job's results (in item order, alone or merged with its retries') and its
failed-batch ledger."""

from __future__ import annotations

import heapq
import itertools
import json
from collections.abc import Iterator
from typing import Any

from orchestrator.context import Context, isoformat
from orchestrator.jobs import result_pages
from orchestrator.jobs.worker_records import short_name
from orchestrator.store import batch_queries, job_queries

_PAGE = 500


def iter_results(ctx: Context, job_id: str) -> Iterator[str]:
    """Yield the job's results as JSON lines, in item order, one page of lines at a time.

    A batch whose result is a list as long as the batch gives one line per item
    (``item_index`` is the item's position in the job); any other result gives one
    line for the batch, keyed by its first item. Each yielded string holds a page of
    batches' lines: the HTTP layer pulls every chunk of a sync iterator through a
    thread hop, which made a line-per-chunk stream take minutes for large jobs.
    """
    for rows in result_pages.pages(ctx, job_id, _PAGE):
        lines: list[str] = []
        for index, first_item, size, text in rows:
            result = json.loads(text)
            if isinstance(result, list) and len(result) == size:
                for offset, item_result in enumerate(result):
                    lines.append(_line(first_item + offset, index, item_result))
            else:
                lines.append(_line(first_item, index, result, whole_batch=True))
        yield "".join(lines)


def iter_merged(ctx: Context, job_id: str) -> Iterator[str]:
    """Yield a job's results merged with its retries' (and theirs), in item order.

    Retries keep their parent's item indices, so each job's lines come in item order and
    a k-way merge puts them together; where several jobs have a result for an item (two
    retries of one job), the newest job's wins. Each line names the ``job_id`` it is from.
    """
    with ctx.store.read() as conn:
        jobs = [job_id, *job_queries.retries_of(conn, job_id)]
    streams = [_keyed_lines(ctx, job, -rank) for rank, job in enumerate(jobs)]
    lines: list[str] = []
    last = None
    for item_index, _, line in heapq.merge(*streams):
        if item_index == last:
            continue
        last = item_index
        lines.append(line)
        if len(lines) >= _PAGE:
            yield "".join(lines)
            lines = []
    if lines:
        yield "".join(lines)


def _keyed_lines(ctx: Context, job_id: str, rank: int) -> Iterator[tuple[int, int, str]]:
    """Yield ``item_index, rank, line`` for each result line of a job, in item order."""
    for rows in result_pages.pages(ctx, job_id, _PAGE):
        for index, first_item, size, text in rows:
            result = json.loads(text)
            if isinstance(result, list) and len(result) == size:
                for offset, item_result in enumerate(result):
                    item = first_item + offset
                    yield item, rank, _line(item, index, item_result, job_id=job_id)
            else:
                yield first_item, rank, _line(first_item, index, result, True, job_id)


def _line(
    item_index: int,
    batch_index: int,
    result: Any,
    whole_batch: bool = False,
    job_id: str | None = None,
) -> str:
    record: dict[str, Any] = {"item_index": item_index, "batch_index": batch_index}
    if job_id is not None:
        record["job_id"] = job_id
    if whole_batch:
        record["batch_result"] = True
    record["result"] = result
    return json.dumps(record) + "\n"


def failed_batches(ctx: Context, job_id: str, limit: int = 1000) -> list[dict[str, Any]]:
    """Return the job's failed-batch ledger in item order: error, traceback, attempts,
    worker, payload.

    A batch that isolation searched (``orchestrator.store.isolation``) is not listed whole:
    its failing items are, one by one (``"isolation": "isolated"``), or a part the search's
    bound left unsplit (``"isolation": "isolation stopped: ..."``), each with the index of
    the batch it comes from (``batch_index``) and its own (``part_index``).
    """
    with ctx.store.read() as conn:
        own = batch_queries.failed(conn, job_id, limit)
        parts = batch_queries.failed_parts(conn, job_id, limit)
    rows = itertools.islice(heapq.merge(own, parts, key=lambda row: row[2]), limit)
    return [
        {
            "batch_id": row[0],
            "batch_index": row[1],
            "first_item": row[2],
            "size": row[3],
            "payload": json.loads(row[4]),
            "attempts": row[5],
            "errors": row[6],
            "worker": short_name(row[7]) if row[7] else None,
            "error": row[8],
            "traceback": row[9],
            "failed_time": isoformat(row[10]),
            "isolation": row[11],
            "part_index": row[12],
        }
        for row in rows
    ]
