"""The worker loop: load the predictor, then lease, predict and acknowledge until done."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from types import FrameType
from typing import Any

from runtime.client import OrchestratorClient
from runtime.errors import WorkerError
from runtime.loader import call_by_name, construct, load_predictor_class
from runtime.tagging import TaggedWriter

EXIT_OK, EXIT_FAILED, EXIT_LOAD_ERROR = 0, 1, 2


class Worker:
    """One worker of one job. ``run()`` returns the process exit code."""

    def __init__(self, server: str, worker_id: str, project_dir: Path) -> None:
        self.server = server
        self.worker_id = worker_id
        self.project_dir = project_dir
        self.client = OrchestratorClient(server, worker_id)
        self.batch_index: int | None = None
        self.stopping = False

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
        heartbeat = _Heartbeat(self.server, self.worker_id, spec["heartbeat_interval_s"])
        try:
            self._loop(predictor, heartbeat)
        finally:
            heartbeat.close()
        self.client.call("POST", "state", {"state": "done"})
        print("exiting: no more work for this worker")
        return EXIT_OK

    def _loop(self, predictor: Any, heartbeat: _Heartbeat) -> None:
        ack: dict[str, Any] | None = None
        while True:
            task = self.client.call("POST", "next", {"ack": ack, "stopping": self.stopping})
            ack = None
            kind = task["task"]
            if kind == "exit":
                print(f"no more batches: {task.get('reason')}")
                return
            if self.stopping:
                print("stopping on request (SIGTERM)")
                return
            if kind == "wait":
                time.sleep(task.get("delay_s", 0.2))
            elif kind == "batch":
                ack = self._run_batch(predictor, task, heartbeat)
            elif kind == "on_job_complete":
                self._run_hook(predictor, task["job_summary"])

    def _run_batch(
        self, predictor: Any, task: dict[str, Any], heartbeat: _Heartbeat
    ) -> dict[str, Any]:
        batch_id = task["batch_id"]
        self.batch_index = task["index"]
        heartbeat.track(batch_id)
        started = time.perf_counter()
        try:
            # The predictor's batch_id is the batch's index in the job, as logs and ledger show it.
            result = call_by_name(
                predictor.predict, {"payload": task["payload"], "batch_id": str(task["index"])}
            )
            encoded = None if result is None else json.loads(json.dumps(result, default=_plain))
            return {
                "batch_id": batch_id,
                "duration": time.perf_counter() - started,
                "result": encoded,
            }
        except Exception as e:
            print(f"predict raised {type(e).__name__}: {e} (attempt {task.get('attempt')})")
            return {
                "batch_id": batch_id,
                "error": f"{type(e).__name__}: {e}",
                "traceback": traceback.format_exc(),
            }
        finally:
            heartbeat.track(None)
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
    """Extends the lease of the batch being predicted, from one thread for the worker's life."""

    def __init__(self, server: str, worker_id: str, interval_s: float) -> None:
        self._client = OrchestratorClient(server, worker_id, wait_s=interval_s)
        self._interval = interval_s
        self._batch_id: int | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()

    def track(self, batch_id: int | None) -> None:
        """Heartbeat for ``batch_id`` from now on (None: nothing to extend)."""
        self._batch_id = batch_id

    def close(self) -> None:
        """Stop the thread and close its connection."""
        self._done.set()
        self._thread.join()
        self._client.close()

    def _run(self) -> None:
        while not self._done.wait(self._interval):
            batch_id = self._batch_id
            if batch_id is None:
                continue
            try:
                self._client.call("POST", "heartbeat", {"batch_id": batch_id})
            except WorkerError as e:
                print(f"heartbeat failed: {e}", file=sys.stderr)


def _plain(value: Any) -> Any:
    """Turn numpy/torch values into plain JSON ones; anything else is an error."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"predict returned a {type(value).__name__}, which is not JSON-serialisable")
