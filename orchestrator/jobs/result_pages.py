"""A job's succeeded batches, a page at a time, in item order, with the parts that isolation
ran in place of failed batches (``orchestrator.store.isolation``) merged in.

Each row is ``batch_index, first_item, size, result``; a part's ``batch_index`` is that of
the job's batch it comes from. The job's own batches come in index order (which is item
order), its parts in item order through their own index; a job with no part reads only
the first.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy.engine import Connection

from orchestrator.context import Context
from orchestrator.store import batch_queries

Row = tuple[Any, ...]
Page = list[Row]


def pages(ctx: Context, job_id: str, size: int) -> Iterator[Page]:
    """Yield the job's succeeded batches and parts in item order, ``size`` rows a page."""
    own = _paged(ctx, lambda conn, after: batch_queries.results_page(conn, job_id, after, size), 0)
    parts = _paged(
        ctx, lambda conn, after: batch_queries.part_results_page(conn, job_id, after, size), 1
    )
    first_parts = next(parts, None)
    if first_parts is None:  # the usual case: no batch of the job was isolated
        yield from own
        return
    merged = heapq.merge(_rows(own), _rows(_chain(first_parts, parts)), key=lambda row: row[1])
    page: Page = []
    for row in merged:
        page.append(row)
        if len(page) >= size:
            yield page
            page = []
    if page:
        yield page


def _paged(ctx: Context, read: Callable[[Connection, int], Page], position: int) -> Iterator[Page]:
    """Yield pages of ``read(conn, after)``, each read past the ``position`` key of the last."""
    after = -1
    while True:
        with ctx.store.read() as conn:
            rows = read(conn, after)
        if not rows:
            return
        yield rows
        after = rows[-1][position]


def _chain(first: Page, rest: Iterator[Page]) -> Iterator[Page]:
    yield first
    yield from rest


def _rows(pages_: Iterator[Page]) -> Iterator[Row]:
    for page in pages_:
        yield from page
