"""The batch loop: lease batches a few at a time, run them in order, acknowledge them together.

The worker asks for as many batches as fit in ``window_s`` at its recent pace (one while it
has no pace yet), so fast batches cost one round trip per many and slow ones one each.
Batches under ``LEASE_AHEAD_BELOW_S`` have the next lease requested (on a thread) while the
last one runs. Acks ride on the next lease request, or go alone when ``ACK_EVERY_S`` has
passed or their results pass ``ACK_MAX_BYTES``, so progress is never older than that.
A batch stays in ``buffer`` while it waits and runs, and in ``acks`` until acknowledged:
the heartbeat extends the leases of both.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from runtime.batch import lease_of, run_batch
from runtime.protocol import ACK_MAX_BYTES, Task
from runtime.trace import Trace
from runtime.transport import Json, Transport

#: A lease request asks for at most this many batches (and for one before a pace is known).
MAX_PREFETCH = 256
#: Finished batches are acknowledged at least this often, even mid-way through a lease.
ACK_EVERY_S = 1.0
#: Batches shorter than this have the next lease requested while the last one runs. Longer
#: ones do not: a round trip is nothing next to them, and a batch leased early could sit
#: behind a long one while another worker idles at the end of the job.
LEASE_AHEAD_BELOW_S = 0.1
#: How much one batch's duration moves the pace (an exponential moving average).
PACE_WEIGHT = 0.2
#: How long to wait when told to, if the orchestrator does not say.
DEFAULT_WAIT_S = 0.2


class BatchLoop:
    """One worker's batches, from its first lease to the orchestrator's ``exit``.

    Args:
        transport: The worker's transport (shared with the lease-ahead thread, never
            used by both at once).
        predictor: The loaded predictor.
        window_s: How much work (at the recent pace) one lease request asks for.
        trace: Per-batch timestamps for benchmarks.
        stopping: Whether the worker has been asked to stop (SIGTERM).
        running: Called with the index of the batch that starts running, then None.
        run_hook: Runs ``on_job_complete`` with the job summary and reports it.
    """

    def __init__(
        self,
        transport: Transport,
        predictor: Any,
        window_s: float,
        trace: Trace,
        stopping: Callable[[], bool],
        running: Callable[[int | None], None],
        run_hook: Callable[[Json], None],
    ) -> None:
        self.transport, self.predictor, self.window_s = transport, predictor, window_s
        self.trace, self.stopping, self.running, self.run_hook = trace, stopping, running, run_hook
        self.buffer: deque[Json] = deque()  # leased, not yet run (the first one runs next)
        self.acks: list[Json] = []  # run, not yet acknowledged
        self._sizes: list[int] = []  # the JSON size of each result in acks
        self._pace = _Pace()
        self._last_report = time.monotonic()
        self._ahead: _Ahead | None = None

    def run(self) -> None:
        """Run batches until the orchestrator says exit, or the worker is told to stop."""
        while True:
            self._lease_ahead_if_short()
            if self.buffer and not self._ack_due() and not self.stopping():
                self._run_next()
                continue
            task, stopped = self._exchange()
            if stopped:
                print("stopping on request (SIGTERM)")
                return
            if not self._follow(task):
                return

    def _lease_ahead_if_short(self) -> None:
        """With short batches, ask for the next lease while the last leased one runs."""
        if (
            self._ahead is None
            and len(self.buffer) == 1
            and not self.stopping()
            and self._pace.is_short()
        ):
            want = self._pace.batches_in(self.window_s)
            self._ahead = _Ahead(self.transport, {"acks": list(self.acks), "want": want})

    def _ack_due(self) -> bool:
        """Return whether the acks must go now, before the next batch runs."""
        if self._ahead is not None:
            return False  # they ride on the request already out
        overdue = bool(self.acks) and time.monotonic() - self._last_report >= ACK_EVERY_S
        return overdue or sum(self._sizes) >= ACK_MAX_BYTES

    def _run_next(self) -> None:
        """Run the first leased batch and keep its ack."""
        batch = self.buffer[0]
        self.running(batch["index"])
        self.trace.started(batch)
        try:
            ack, size = run_batch(self.predictor, batch)
        finally:
            self.trace.finished(batch)
            self.running(None)
        self.acks.append(ack)
        self.buffer.popleft()
        self._pace.record(ack["duration"])
        self._sizes.append(size)

    def _exchange(self) -> tuple[Json, bool]:
        """Send the acks and take the next task; return it and whether the worker stopped.

        A stopping worker hands back the batches it leased but has not started.
        """
        if self._ahead is not None:
            task, sent, stopped = self._ahead.result(), self._ahead.acks, False
            self._ahead = None
        else:
            stopped = self.stopping()
            request = {
                "acks": self.acks,
                "want": 0 if self.buffer or stopped else self._pace.batches_in(self.window_s),
                "stopping": stopped,
                "release": [lease_of(batch) for batch in self.buffer] if stopped else [],
            }
            task, sent = self.transport.next_task(request), len(self.acks)
        self._acked(sent)
        self._last_report = time.monotonic()
        return task, stopped

    def _follow(self, task: Json) -> bool:
        """Do what the task says; return False when the worker is done."""
        kind = task["task"]
        if kind == Task.EXIT:
            if self.acks:  # batches that finished while the answer was on its way
                self.transport.next_task({"acks": self.acks, "want": 0})
                self._acked(len(self.acks))
            print(f"no more batches: {task.get('reason')}")
            return False
        if kind == Task.BATCHES:
            self.buffer.extend(self.trace.leased(task["batches"]))
        elif kind == Task.WAIT and not self.acks:  # with acks to send, send them first
            time.sleep(task.get("delay_s", DEFAULT_WAIT_S))
        elif kind == Task.ON_JOB_COMPLETE:
            self.run_hook(task["job_summary"])
        return True

    def _acked(self, count: int) -> None:
        """Drop the first ``count`` acks: the orchestrator has them."""
        self.trace.acked(self.acks[:count])
        del self.acks[:count]
        del self._sizes[:count]


class _Ahead:
    """A lease request on its own thread, sent while the worker runs its last leased batch.

    It shares the worker's transport: the loop never calls the orchestrator while one is out.
    """

    def __init__(self, transport: Transport, request: Json) -> None:
        self.acks = len(request["acks"])
        self._result: Json = {}
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(transport, request), name="lease-ahead", daemon=True
        )
        self._thread.start()

    def result(self) -> Json:
        """Wait for the answer; raise what the call raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result

    def _run(self, transport: Transport, request: Json) -> None:
        try:
            self._result = transport.next_task(request)
        except BaseException as e:  # handed to the loop by result()
            self._error = e


class _Pace:
    """The recent time per batch, to size lease requests."""

    def __init__(self) -> None:
        self._seconds: float | None = None

    def record(self, seconds: float) -> None:
        """Fold one batch's duration into the moving average."""
        if self._seconds is None:
            self._seconds = seconds
        else:
            self._seconds += PACE_WEIGHT * (seconds - self._seconds)

    def is_short(self) -> bool:
        """Return whether batches are known to take under ``LEASE_AHEAD_BELOW_S``."""
        return self._seconds is not None and self._seconds < LEASE_AHEAD_BELOW_S

    def batches_in(self, window_s: float) -> int:
        """Return how many batches fit in ``window_s`` at this pace (1 before any is known)."""
        if self._seconds is None:
            return 1
        return max(1, min(MAX_PREFETCH, int(window_s / max(self._seconds, 1e-6))))
