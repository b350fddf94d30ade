"""The heartbeat: extends the leases a worker holds, from one thread for the worker's life."""

from __future__ import annotations

import sys
import threading
from collections import deque
from typing import Any

from runtime.errors import WorkerError
from runtime.transport import Transport


class Heartbeat:
    """Every ``interval_s``, extends the leases of the batches in ``buffer`` and ``acks``.

    It has its own transport (its own connection), so a heartbeat never waits behind a
    lease request.
    """

    def __init__(
        self,
        transport: Transport,
        interval_s: float,
        buffer: deque[dict[str, Any]],
        acks: list[dict[str, Any]],
    ) -> None:
        self._transport = transport
        self._interval = interval_s
        self._buffer, self._acks = buffer, acks
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread and close its connection."""
        self._done.set()
        self._thread.join()
        self._transport.close()

    def _run(self) -> None:
        while not self._done.wait(self._interval):
            # list() copies a deque or list atomically under the GIL.
            held = [b["batch_id"] for b in list(self._buffer) + list(self._acks)]
            if not held:
                continue
            try:
                self._transport.heartbeat(held)
            except WorkerError as e:
                print(f"heartbeat failed: {e}", file=sys.stderr)
