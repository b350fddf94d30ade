"""A worker's life: load the predictor, run the batch loop, run the hook, report, exit."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from types import FrameType
from typing import Any

from runtime.batch_loop import BatchLoop
from runtime.errors import OrchestratorUnreachable, WorkerError
from runtime.gpu_samples import GpuSampler
from runtime.heartbeat import Heartbeat
from runtime.loader import call_by_name, construct, load_predictor_class
from runtime.protocol import (
    DEFAULT_ORCHESTRATOR_WAIT_S,
    GPU_SAMPLE_INTERVAL_S,
    GPUS_FIELD,
    ORCHESTRATOR_WAIT_ENV,
    SERVER_CERT_ENV,
    EndReason,
    Report,
)
from runtime.tagging import TaggedWriter
from runtime.trace import Trace
from runtime.transport import Json, Transport, open_transport

EXIT_OK, EXIT_FAILED, EXIT_LOAD_ERROR = 0, 1, 2


class Worker:
    """One worker of one job. ``run()`` returns the process exit code.

    Args:
        transport: The transport description it was launched with (e.g. the
            orchestrator's URL).
        worker_id: This worker's id.
        secret: This worker's own secret.
        project_dir: The API's files.
    """

    def __init__(self, transport: str, worker_id: str, secret: str, project_dir: Path) -> None:
        self.worker_id = worker_id
        self.project_dir = project_dir
        self._description, self._secret = transport, secret
        self._server_cert = os.environ.get(SERVER_CERT_ENV) or None
        self.wait_s = _wait_s()
        self.transport: Transport = self._open(self.wait_s)
        self.batch_index: int | None = None
        self.stopping = False
        self.trace = Trace(worker_id)

    def _open(self, wait_s: float) -> Transport:
        """Open a transport of the kind this worker was launched with."""
        return open_transport(
            self._description,
            self.worker_id,
            self._secret,
            wait_s=wait_s,
            server_cert=self._server_cert,
        )

    def run(self) -> int:
        """Run until the queue is drained, the job ends, or a signal asks to stop."""
        signal.signal(signal.SIGTERM, self._on_sigterm)
        signal.signal(signal.SIGINT, self._on_sigterm)
        try:
            spec = self.transport.spec()
            self._tag_output(spec["worker_name"])
            return self._serve(spec)
        except WorkerError as e:
            print(f"worker failed: {e}", file=sys.stderr)
            self._report_failure(e)
            return EXIT_LOAD_ERROR if e.reason == EndReason.LOAD_ERROR else EXIT_FAILED
        finally:
            self.trace.write()
            sys.stdout.flush()
            sys.stderr.flush()
            self.transport.close()

    def _serve(self, spec: Json) -> int:
        """Load the predictor, run the batch loop with a heartbeat beside it, say done."""
        self.transport.report(Report.INITIALIZING)
        path = spec["predictor"]["path"]
        print(f"loading {path} for job {spec['job_id']} of api {spec['api_name']}")
        started = time.monotonic()
        cls = load_predictor_class(self.project_dir, path, spec["predictor"].get("python_path"))
        predictor = construct(cls, spec["config"], spec["job_spec"], path)
        print(f"predictor ready in {time.monotonic() - started:.2f}s")
        self.transport.report(Report.RUNNING)
        loop = BatchLoop(
            self.transport,
            predictor,
            spec.get("prefetch_window_s", 1.0),
            self.trace,
            stopping=lambda: self.stopping,
            running=self._running,
            run_hook=lambda summary: self._run_hook(predictor, summary),
        )
        interval = spec["heartbeat_interval_s"]
        gpus = GpuSampler() if spec.get(GPUS_FIELD) else None
        if gpus is not None:
            print(f"gpu samples from {gpus.source} every {GPU_SAMPLE_INTERVAL_S:g}s")
        heartbeat = Heartbeat(self._open(interval), interval, loop.buffer, loop.acks, gpus)
        try:
            loop.run()
        finally:
            heartbeat.close()
        self.transport.report(Report.DONE)
        print("exiting: no more work for this worker")
        return EXIT_OK

    def _running(self, index: int | None) -> None:
        """Remember which batch runs, for the tags on the predictor's output."""
        self.batch_index = index

    def _run_hook(self, predictor: Any, summary: Json) -> None:
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
        self.transport.report_hook(error)

    def _report_failure(self, error: WorkerError) -> None:
        if isinstance(error, OrchestratorUnreachable):
            return  # nobody to tell: its log says why, and it exits now rather than wait again
        with contextlib.suppress(WorkerError):
            self.transport.report(Report.FAILED, error.reason, str(error).split("\n")[0])

    def _tag_output(self, name: str) -> None:
        batch = lambda: self.batch_index  # noqa: E731
        sys.stdout = TaggedWriter(sys.__stdout__, name, batch)  # type: ignore[arg-type]
        sys.stderr = TaggedWriter(sys.__stderr__, name, batch)  # type: ignore[arg-type]

    def _on_sigterm(self, signum: int, _frame: FrameType | None) -> None:
        if self.stopping:
            raise SystemExit(EXIT_FAILED)
        self.stopping = True
        print(f"received signal {signum}: finishing the current batch, then exiting")


def _wait_s() -> float:
    """Return how long to wait for an orchestrator that does not answer."""
    raw = os.environ.pop(ORCHESTRATOR_WAIT_ENV, "")  # the worker's, not the predictor's
    try:
        return max(1.0, float(raw))
    except ValueError:
        return DEFAULT_ORCHESTRATOR_WAIT_S
