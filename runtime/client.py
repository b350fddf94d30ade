"""The worker's HTTP client for the orchestrator, patient across orchestrator restarts."""

from __future__ import annotations

import time
from typing import Any

import httpx

from runtime.errors import OrchestratorUnreachable, WorkerError

_RETRYABLE = (httpx.TransportError,)


class OrchestratorClient:
    """Calls ``/_cortex/workers/<id>/...``; retries while the orchestrator is away.

    Every call is safe to repeat: acks of finished batches are ignored, and a
    lease lost with a dropped response simply expires back to the queue.
    """

    def __init__(self, server: str, worker_id: str, wait_s: float = 600.0) -> None:
        self._base = f"{server.rstrip('/')}/_cortex/workers/{worker_id}"
        self._http = httpx.Client(timeout=httpx.Timeout(60.0, connect=5.0))
        self._wait_s = wait_s

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Send one request, retrying transport errors and 5xx answers with back-off."""
        deadline = time.monotonic() + self._wait_s
        delay = 0.1
        while True:
            try:
                response = self._http.request(method, f"{self._base}/{path}", json=body)
                if response.status_code < 500:
                    break
                problem = f"HTTP {response.status_code}: {response.text[:200]}"
            except _RETRYABLE as e:
                problem = f"{type(e).__name__}: {e}"
            if time.monotonic() > deadline:
                raise OrchestratorUnreachable(
                    f"the orchestrator did not answer for {self._wait_s:g}s ({problem})"
                )
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
        if response.status_code >= 400:
            try:
                message = response.json().get("error", response.text)
            except ValueError:
                message = response.text
            raise WorkerError(f"the orchestrator refused {path}: {message}")
        return response.json()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()
