"""Per-batch timestamps for benchmarks, written on exit when ``CORTEX_WORKER_TRACE`` is set."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


class Trace:
    """One JSON line per batch in ``$CORTEX_WORKER_TRACE/<worker_id>.jsonl``.

    Each line has ``index``, ``leased``, ``started``, ``finished`` and ``acked``
    (``time.monotonic()``). Without the variable every method does nothing.
    """

    def __init__(self, worker_id: str) -> None:
        directory = os.environ.get("CORTEX_WORKER_TRACE")
        self._path = Path(directory) / f"{worker_id}.jsonl" if directory else None
        self._rows: dict[int, dict[str, float]] = {}
        self._done: list[dict[str, float]] = []

    def leased(self, batches: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Stamp a lease response's batches; return them."""
        if self._path is not None:
            now = time.monotonic()
            for batch in batches:
                self._rows[batch["batch_id"]] = {"index": batch["index"], "leased": now}
        return batches

    def started(self, batch: dict[str, Any]) -> None:
        """Stamp the start of predict."""
        if self._path is not None:
            self._rows[batch["batch_id"]]["started"] = time.monotonic()

    def finished(self, batch: dict[str, Any]) -> None:
        """Stamp the end of predict."""
        if self._path is not None:
            self._rows[batch["batch_id"]]["finished"] = time.monotonic()

    def acked(self, acks: list[dict[str, Any]]) -> None:
        """Stamp the acks the orchestrator just took."""
        if self._path is not None and acks:
            now = time.monotonic()
            for ack in acks:
                row = self._rows.pop(ack["batch_id"])
                row["acked"] = now
                self._done.append(row)

    def write(self) -> None:
        """Write the finished rows, if tracing."""
        if self._path is None:
            return
        with open(self._path, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(row) + "\n" for row in self._done)
