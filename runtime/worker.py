"""The worker loop: load the predictor, then lease, predict and acknowledge until done."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections import deque
from pathlib import Path
from types import FrameType
from typing import Any

from runtime.client import OrchestratorClient
from runtime.errors import WorkerError
from runtime.loader import call_by_name, construct, load_predictor_class
from runtime.tagging import TaggedWriter

EXIT_OK, EXIT_FAILED, EXIT_LOAD_ERROR = 0, 1, 2
#: A lease request asks for at most this many batches (and for one before a pace is known).
MAX_PREFETCH = 256
#: Finished batches are acknowledged at least this often, even mid-way through a lease.
ACK_EVERY_S = 1.0
#: One batch's result may be at most this much JSON (the orchestrator takes 64 MiB a request) ...
MAX_RESULT_BYTES = 32 << 20
#: ... and acks go out before the results they carry pass this.
ACK_MAX_BYTES = 16 << 20
#: Batches shorter than this have the next lease requested while the last one runs. Longer
#: ones do not: a round trip is nothing next to them, and a batch leased early could sit
#: behind a long one while another worker idles at the end of the job.
LEASE_AHEAD_BELOW_S = 0.1


class Worker:
    """One worker of one job. ``run()`` returns the process exit code."""

    def __init__(self, server: str, worker_id: str, secret: str, project_dir: Path) -> None:
        self.server = server
        self.worker_id = worker_id
        self.secret = secret
        self.project_dir = project_dir
        self.server_cert = os.environ.get("CORTEX_SERVER_CERT") or None
        self.client = OrchestratorClient(server, worker_id, secret, server_cert=self.server_cert)
        self.batch_index: int | None = None
        self.stopping = False
        self.trace = _Trace(worker_id)

    def run(self) -> int:
        """Run until the queue is drained, the job ends, or a signal asks to stop."""
        signal.signal(signal.SIGTERM, self._on_sigterm)
        signal.signal(signal.SIGINT, self._on_sigterm)
        try:
            spec = self.client.call("GET", "spec")
            self._tag_output(spec["worker_name"])
            return self._serve(spec)
        except WorkerError as e:
            print(f"worker failed: {e}", file=sys.stderr)
            self._report_failure(e)
            return EXIT_LOAD_ERROR if e.reason == "load_error" else EXIT_FAILED
        finally:
            self.trace.write()
            sys.stdout.flush()
            sys.stderr.flush()
            self.client.close()

    def _serve(self, spec: dict[str, Any]) -> int:
        self.client.call("POST", "state", {"state": "initializing"})
        path = spec["predictor"]["path"]
        print(f"loading {path} for job {spec['job_id']} of api {spec['api_name']}")
        started = time.monotonic()
        cls = load_predictor_class(self.project_dir, path, spec["predictor"].get("python_path"))
        predictor = construct(cls, spec["config"], spec["job_spec"], path)
        print(f"predictor ready in {time.monotonic() - started:.2f}s")
        self.client.call("POST", "state", {"state": "running"})
        buffer: deque[dict[str, Any]] = deque()
        acks: list[dict[str, Any]] = []
        heartbeat = _Heartbeat(
            OrchestratorClient(
                self.server,
                self.worker_id,
                self.secret,
                wait_s=spec["heartbeat_interval_s"],
                server_cert=self.server_cert,
            ),
            spec["heartbeat_interval_s"],
            buffer,
            acks,
        )
        try:
            self._loop(predictor, buffer, acks, spec.get("prefetch_window_s", 1.0))
        finally:
            heartbeat.close()
        self.client.call("POST", "state", {"state": "done"})
        print("exiting: no more work for this worker")
        return EXIT_OK

    def _loop(
        self,
        predictor: Any,
        buffer: deque[dict[str, Any]],
        acks: list[dict[str, Any]],
        window_s: float,
    ) -> None:
        """Lease batches a few at a time, predict them in order, acknowledge them together.

        The worker asks for as many batches as fit in ``window_s`` at its recent
        pace (one while it has no pace yet), so fast batches cost one round trip per
        many and slow ones one each. Batches under ``LEASE_AHEAD_BELOW_S`` have the next
        lease requested (on a thread) while the last one runs. Acks ride on the next lease
        request, or go alone when ``ACK_EVERY_S`` has passed, so progress is never older
        than that.
        A batch stays in ``buffer`` while it runs and in ``acks`` until acknowledged:
        the heartbeat extends the leases of both.
        """
        pace = _Pace()
        last_report = time.monotonic()
        ahead: _Ahead | None = None
        sizes: list[int] = []  # the JSON size of each result in acks
        while True:
            if ahead is None and len(buffer) == 1 and not self.stopping and pace.is_short():
                # Short batches: ask for the next lease while the last one runs, so the
                # round trip costs no predict time.
                want = pace.batches_in(window_s)
                ahead = _Ahead(self.client, {"acks": list(acks), "want": want})
            due = ahead is None and (
                (acks and time.monotonic() - last_report >= ACK_EVERY_S)
                or sum(sizes) >= ACK_MAX_BYTES
            )
            if buffer and not due and not self.stopping:
                ack, size = self._run_batch(predictor, buffer[0])
                acks.append(ack)
                buffer.popleft()
                pace.record(ack["duration"])
                sizes.append(size)
                continue
            if ahead is not None:
                task, sent, ahead, stopping = ahead.result(), ahead.acks, None, False
            else:
                stopping = self.stopping
                request = {
                    "acks": acks,
                    "want": 0 if buffer or stopping else pace.batches_in(window_s),
                    "stopping": stopping,
                    # A stopping worker hands back what it leased but has not started.
                    "release": [_lease_of(batch) for batch in buffer] if stopping else [],
                }
                task, sent = self.client.call("POST", "next", request), len(acks)
            self._acked(acks, sent)
            del sizes[:sent]
            last_report = time.monotonic()
            if stopping:
                print("stopping on request (SIGTERM)")
                return
            kind = task["task"]
            if kind == "exit":
                if acks:  # batches that finished while the answer was on its way
                    self.client.call("POST", "next", {"acks": acks, "want": 0})
                    self._acked(acks, len(acks))
                print(f"no more batches: {task.get('reason')}")
                return
            if kind == "batches":
                buffer.extend(self.trace.leased(task["batches"]))
            elif kind == "wait" and not acks:  # with acks to send, send them first
                time.sleep(task.get("delay_s", 0.2))
            elif kind == "on_job_complete":
                self._run_hook(predictor, task["job_summary"])

    def _acked(self, acks: list[dict[str, Any]], count: int) -> None:
        """Drop the first ``count`` acks: the orchestrator has them."""
        self.trace.acked(acks[:count])
        del acks[:count]

    def _run_batch(self, predictor: Any, task: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """Run ``predict`` on one batch; return its ack and the size of its result's JSON."""
        self.batch_index = task["index"]
        started = time.perf_counter()
        self.trace.started(task)
        try:
            # The predictor's batch_id is the batch's index in the job, as logs and ledger show it.
            result = call_by_name(
                predictor.predict, {"payload": task["payload"], "batch_id": str(task["index"])}
            )
            encoded, size = None, 0
            if result is not None:
                text = json.dumps(result, default=_plain)
                size = len(text)
                if size > MAX_RESULT_BYTES:
                    raise ResultTooLarge(
                        f"predict returned {size / 2**20:.1f} MiB of JSON for this batch, over the"
                        f" {MAX_RESULT_BYTES >> 20} MiB limit per batch: return less per batch"
                        " (a smaller batch_size), or write large outputs to files and return"
                        " their paths"
                    )
                encoded = json.loads(text)
            return {
                **_lease_of(task),
                "duration": time.perf_counter() - started,
                "result": encoded,
            }, size
        except Exception as e:
            print(f"predict raised {type(e).__name__}: {e} (attempt {task.get('attempt')})")
            return {
                **_lease_of(task),
                "duration": time.perf_counter() - started,
                "error": f"{type(e).__name__}: {e}",
                "traceback": traceback.format_exc(),
            }, 0
        finally:
            self.trace.finished(task)
            self.batch_index = None

    def _run_hook(self, predictor: Any, summary: dict[str, Any]) -> None:
        hook = getattr(predictor, "on_job_complete", None)
        error = None
        if hook is not None:
            succeeded, failed = summary["succeeded"], summary["failed"]
            print(f"running on_job_complete ({succeeded} succeeded, {failed} failed)")
            try:
                call_by_name(hook, {"job_summary": summary})
            except Exception as e:
                traceback.print_exc()
                error = f"{type(e).__name__}: {e}"
        self.client.call("POST", "hook", {"error": error})

    def _report_failure(self, error: WorkerError) -> None:
        with contextlib.suppress(WorkerError):
            self.client.call(
                "POST",
                "state",
                {
                    "state": "failed",
                    "reason": error.reason,
                    "error": str(error).split("\n")[0],
                },
            )

    def _tag_output(self, name: str) -> None:
        batch = lambda: self.batch_index  # noqa: E731
        sys.stdout = TaggedWriter(sys.__stdout__, name, batch)  # type: ignore[arg-type]
        sys.stderr = TaggedWriter(sys.__stderr__, name, batch)  # type: ignore[arg-type]

    def _on_sigterm(self, signum: int, _frame: FrameType | None) -> None:
        if self.stopping:
            raise SystemExit(EXIT_FAILED)
        self.stopping = True
        print(f"received signal {signum}: finishing the current batch, then exiting")


class _Heartbeat:
    """Extends the leases this worker holds, from one thread for the worker's life."""

    def __init__(
        self,
        client: OrchestratorClient,
        interval_s: float,
        buffer: deque[dict[str, Any]],
        acks: list[dict[str, Any]],
    ) -> None:
        self._client = client
        self._interval = interval_s
        self._buffer, self._acks = buffer, acks
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread and close its connection."""
        self._done.set()
        self._thread.join()
        self._client.close()

    def _run(self) -> None:
        while not self._done.wait(self._interval):
            # list() copies a deque or list atomically under the GIL.
            held = [b["batch_id"] for b in list(self._buffer) + list(self._acks)]
            if not held:
                continue
            try:
                self._client.call("POST", "heartbeat", {"batch_ids": held})
            except WorkerError as e:
                print(f"heartbeat failed: {e}", file=sys.stderr)


class ResultTooLarge(Exception):
    """A batch's result is too large to send to the orchestrator; the batch fails."""


class _Ahead:
    """A lease request on its own thread, sent while the worker runs its last leased batch.

    It shares the worker's client: the loop never calls the orchestrator while one is out.
    """

    def __init__(self, client: OrchestratorClient, body: dict[str, Any]) -> None:
        self.acks = len(body["acks"])
        self._result: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(client, body), name="lease-ahead", daemon=True
        )
        self._thread.start()

    def result(self) -> Any:
        """Wait for the answer; raise what the call raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result

    def _run(self, client: OrchestratorClient, body: dict[str, Any]) -> None:
        try:
            self._result = client.call("POST", "next", body)
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
            self._seconds = 0.8 * self._seconds + 0.2 * seconds

    def is_short(self) -> bool:
        """Return whether batches are known to take under ``LEASE_AHEAD_BELOW_S``."""
        return self._seconds is not None and self._seconds < LEASE_AHEAD_BELOW_S

    def batches_in(self, window_s: float) -> int:
        """Return how many batches fit in ``window_s`` at this pace (1 before any is known)."""
        if self._seconds is None:
            return 1
        return max(1, min(MAX_PREFETCH, int(window_s / max(self._seconds, 1e-6))))


class _Trace:
    """Per-batch timestamps for benchmarks, written on exit when ``CORTEX_WORKER_TRACE`` is set.

    One JSON line per batch in ``$CORTEX_WORKER_TRACE/<worker_id>.jsonl``:
    ``index``, ``leased``, ``started``, ``finished``, ``acked`` (``time.monotonic()``).
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


def _lease_of(batch: dict[str, Any]) -> dict[str, Any]:
    """Return the batch's id and the lease token that proves this worker was handed it."""
    return {"batch_id": batch["batch_id"], "lease": batch["lease"]}


def _plain(value: Any) -> Any:
    """Turn numpy/torch values into plain JSON ones; anything else is an error."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"predict returned a {type(value).__name__}, which is not JSON-serialisable")
