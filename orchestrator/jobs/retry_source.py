"""The source of a retry's job: its parent's failed batches, read back from the store.

Each batch keeps the index of its first item in the parent, so the retry's results carry
the parent's ``item_index`` and can be merged with the parent's (``results.iter_merged``).
Re-split into another batch size, a batch never spans a gap between failed batches: the
items of one batch stay consecutive, as the results' numbering needs.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from orchestrator.errors import SourceError
from orchestrator.jobs.sources import Source
from orchestrator.store import batch_queries

if TYPE_CHECKING:
    from orchestrator.store.engine import Store

_PAGE = 500


class RetrySource(Source):
    """A parent job's failed batches, in the parent's order, with the parent's item indices.

    Args:
        store: The store the parent's batches are read from (while enqueuing).
        parent_job_id: The job whose failed batches are re-run.
        batch_size: Items per batch when ``resplit``; else the parent's batch size.
        resplit: Cut the failed items into batches of ``batch_size`` instead of keeping
            the parent's batches.
        counts: ``batches`` and ``items`` the source yields (shown in the job's status).
    """

    kind = "retry"

    def __init__(
        self,
        store: Store,
        parent_job_id: str,
        batch_size: int,
        resplit: bool,
        counts: dict[str, int],
    ) -> None:
        self.store = store
        self.parent_job_id = parent_job_id
        self.batch_size = batch_size
        self.resplit = resplit
        self.counts = counts

    @classmethod
    def from_spec(cls, store: Store, spec: dict[str, Any]) -> RetrySource:
        """Rebuild the source from ``to_spec()``."""
        try:
            return cls(
                store,
                str(spec["parent_job_id"]),
                int(spec["batch_size"]),
                bool(spec["resplit"]),
                {"batches": int(spec["batches"]), "items": int(spec["items"])},
            )
        except (KeyError, TypeError, ValueError) as e:
            raise SourceError(f"source spec: not a valid retry spec ({e!r})") from None

    def placed_batches(self) -> Iterator[tuple[int, int, str]]:
        """Yield the failed batches (re-split if asked) with their first item's index."""
        rows = self._failed_rows()
        if self.resplit:
            yield from resplit(rows, self.batch_size)
        else:
            yield from rows

    def encoded_batches(self) -> Iterator[tuple[int, str]]:
        """Yield each batch's size and JSON text."""
        for _, size, payload in self.placed_batches():
            yield size, payload

    def batches(self) -> Iterator[list[Any]]:
        """Yield each batch's items."""
        for _, _, payload in self.placed_batches():
            yield json.loads(payload)

    def describe(self) -> dict[str, Any]:
        """Return the kind, the parent, the batch size and how many batches and items."""
        return {
            "kind": self.kind,
            "parent_job_id": self.parent_job_id,
            "batch_size": self.batch_size,
            **self.counts,
        }

    def to_spec(self) -> dict[str, Any]:
        """Return what ``from_spec`` needs: the parent, how to split, and the counts."""
        return {**self.describe(), "resplit": self.resplit}

    def _failed_rows(self) -> Iterator[tuple[int, int, str]]:
        """Yield ``first_item, size, payload`` of what failed in the parent, in item order:
        its own failed batches and, where isolation split a batch, its failed parts (the
        two never share an item)."""
        return heapq.merge(self._own_failed(), self._failed_parts())

    def _own_failed(self) -> Iterator[tuple[int, int, str]]:
        """Yield the parent's own failed batches (in index order, so item order), a page a read."""
        after = -1
        while True:
            with self.store.read() as conn:
                rows = batch_queries.failed_page(conn, self.parent_job_id, after, _PAGE)
            if not rows:
                return
            for _, first, size, payload in rows:
                yield int(first), int(size), str(payload)
            after = int(rows[-1][0])

    def _failed_parts(self) -> Iterator[tuple[int, int, str]]:
        """Yield the parent's failed parts (isolation's), in item order, a page a read."""
        after = -1
        while True:
            with self.store.read() as conn:
                rows = batch_queries.failed_parts_page(conn, self.parent_job_id, after, _PAGE)
            if not rows:
                return
            for first, size, payload in rows:
                yield int(first), int(size), str(payload)
            after = int(rows[-1][0])


def resplit_count(spans: Iterable[tuple[int, int]], batch_size: int) -> int:
    """Return how many batches ``resplit`` makes of batches at ``first_item, size``."""
    batches = run = 0
    end: int | None = None
    for first, size in spans:
        if first != end:
            batches += -(-run // batch_size)
            run = 0
        run += size
        end = first + size
    return batches + -(-run // batch_size)


def resplit(
    rows: Iterable[tuple[int, int, str]], batch_size: int
) -> Iterator[tuple[int, int, str]]:
    """Cut runs of consecutive items into batches of ``batch_size`` (a gap ends a batch)."""
    start = 0
    items: list[Any] = []
    for first, _, payload in rows:
        if items and first != start + len(items):
            yield start, len(items), json.dumps(items)
            items = []
        if not items:
            start = first
        items.extend(json.loads(payload))
        while len(items) >= batch_size:
            chunk, items = items[:batch_size], items[batch_size:]
            yield start, len(chunk), json.dumps(chunk)
            start += len(chunk)
    if items:
        yield start, len(items), json.dumps(items)
