"""The heartbeat: extends the leases a worker holds, from one thread for the worker's life,
and carries the samples of the GPUs it holds."""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from typing import Any

from runtime.errors import WorkerError
from runtime.gpu_samples import GpuSampler, Sample
from runtime.protocol import GPU_SAMPLE_INTERVAL_S
from runtime.transport import Transport


class Heartbeat:
    """Every ``interval_s``, extends the leases of the batches in ``buffer`` and ``acks``.

    It has its own transport (its own connection), so a heartbeat never waits behind a
    lease request. With a ``gpus`` sampler, a beat every ``GPU_SAMPLE_INTERVAL_S`` or so
    also carries the held devices' samples (and is sent even when no batch is held).
    """

    def __init__(
        self,
        transport: Transport,
        interval_s: float,
        buffer: deque[dict[str, Any]],
        acks: list[dict[str, Any]],
        gpus: GpuSampler | None = None,
    ) -> None:
        self._transport = transport
        self._gpus = gpus
        self._sampled = -GPU_SAMPLE_INTERVAL_S
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
            samples = self._sample()
            if not held and not samples:
                continue
            try:
                self._transport.heartbeat(held, samples)
            except WorkerError as e:
                print(f"heartbeat failed: {e}", file=sys.stderr)

    def _sample(self) -> list[Sample] | None:
        """Return the GPU samples this beat carries: None between samples or without GPUs."""
        now = time.monotonic()
        if self._gpus is None or now - self._sampled < GPU_SAMPLE_INTERVAL_S:
            return None
        self._sampled = now
        return self._gpus.sample() or None
