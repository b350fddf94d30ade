"""A submitted job, as the Python client hands it out: status, wait, results, stop, retry."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from cortex_tui.client import CortexClient
from cortex_tui.errors import WaitTimeout
from cortex_tui.job_status import JobStatus
from cortex_tui.progress import ProgressBar, live_output

POLL_S = 0.5
#: The most ledger entries the server gives in one answer (its `limit` bound).
MAX_LEDGER = 1_000_000


class Job:
    """One job of one API, on the orchestrator a ``Client`` speaks to.

    Attributes:
        api: The API's name.
        id: The job's full id.
    """

    def __init__(self, http: CortexClient, api: str, job_id: str) -> None:
        self._http = http
        self.api = api
        self.id = job_id

    def __repr__(self) -> str:
        return f"Job(api={self.api!r}, id={self.id!r})"

    def status(self) -> JobStatus:
        """Return where the job stands now."""
        return JobStatus.of(self._http.job_status(self.api, self.id))

    def wait(
        self, progress: bool | None = None, timeout: float | None = None, poll_s: float = POLL_S
    ) -> JobStatus:
        """Wait until the job ends; return its last status (however it ended).

        Args:
            progress: Show a progress bar on stderr: ``None`` (the default) on a terminal
                or in a notebook only, ``True`` everywhere (a line every few seconds where
                the bar cannot be redrawn), ``False`` never.
            timeout: Seconds to wait at most; ``None`` waits as long as the job runs.
            poll_s: Seconds between two looks at the job.

        Raises:
            WaitTimeout: The job was still running after ``timeout`` seconds (it goes on).
        """
        bar = _bar_for(self, progress)
        deadline = None if timeout is None else time.monotonic() + timeout
        status = self.status()
        try:
            while not status.done:
                if bar is not None:
                    bar.show(_line(bar, status))
                if deadline is not None and time.monotonic() >= deadline:
                    raise WaitTimeout(
                        f"job {self.id} of {self.api} is still {status.status} after"
                        f" {timeout:g}s (it goes on; stop it with job.stop())"
                    )
                time.sleep(poll_s)
                status = self.status()
        finally:
            if bar is not None:
                bar.close(_line(bar, status) if status.done else None)
        return status

    def results(self) -> Iterator[dict[str, Any]]:
        """Yield the job's results in item order, as they are stored so far.

        Each is ``{"item_index", "batch_index", "result"}`` (one per item when ``predict``
        returned a list as long as the batch, else one per batch with ``"batch_result":
        true``, keyed by its first item). Failed batches have none: see ``failed()``.
        """
        for line in self._http.results(self.api, self.id):
            if line:
                yield json.loads(line)

    def failed(self) -> list[dict[str, Any]]:
        """Return the whole failed-batch ledger (up to 1,000,000 entries): per failed batch
        (or item isolated as failing), its ``batch_index``, ``first_item``, ``size``,
        ``payload``, ``attempts``, ``error`` and ``traceback``."""
        answer = self._http.failed(self.api, self.id, limit=MAX_LEDGER)
        ledger: list[dict[str, Any]] = answer["failed_batches"]
        return ledger

    def stop(self) -> str:
        """Stop the job (workers finish their current batch); return the server's message."""
        return str(self._http.stop_job(self.api, self.id).get("message", ""))

    def retry(
        self,
        *,
        workers: int | None = None,
        config: dict[str, Any] | None = None,
        batch_size: int | None = None,
    ) -> Job:
        """Submit a new job of exactly this job's failed batches; return it.

        The items keep their indices and the parent's merged config applies unless
        ``config`` overrides keys of it; ``batch_size`` re-splits the failed items.
        """
        given = {"workers": workers, "config": config, "batch_size": batch_size}
        body = {key: value for key, value in given.items() if value is not None}
        answer = self._http.retry(self.api, self.id, body)
        return Job(self._http, self.api, str(answer["job_id"]))


def _bar_for(job: Job, progress: bool | None) -> ProgressBar | None:
    """Return the bar ``wait`` shows for this ``progress`` choice, or None."""
    bar = ProgressBar(f"{job.api} {job.id}")
    if progress is False or (progress is None and not live_output(bar.stream)):
        return None
    return bar


def _line(bar: ProgressBar, status: JobStatus) -> str:
    """Return the bar's line for a status: rates while it runs, how it ended once it has."""
    done = status.succeeded + status.failed
    note = ""
    if status.status == "status_enqueuing":
        note = "enqueuing"
    elif status.done:
        note = status.status.removeprefix("status_").replace("_", " ")
    return bar.render(done, status.total, status.failed, note)
