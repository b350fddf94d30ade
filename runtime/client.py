"""The worker's HTTP client for the orchestrator, patient across orchestrator restarts.

Standard library only (``http.client`` on one keep-alive connection): a worker starts
in tens of milliseconds instead of the few hundred an HTTP library's imports cost,
and a worker image needs nothing but Python.
"""

from __future__ import annotations

import http.client
import json
import time
from typing import Any
from urllib.parse import urlsplit

from runtime.errors import OrchestratorUnreachable, WorkerError

_RETRYABLE = (OSError, http.client.HTTPException)


class OrchestratorClient:
    """Calls ``/_cortex/workers/<id>/...``; retries while the orchestrator is away.

    Every call is safe to repeat: acks of finished batches are ignored, and a
    lease lost with a dropped response simply expires back to the queue.
    """

    def __init__(
        self, server: str, worker_id: str, wait_s: float = 600.0, timeout_s: float = 60.0
    ) -> None:
        url = urlsplit(server)
        if url.scheme != "http" or not url.hostname:
            raise WorkerError(f"the orchestrator URL must be http://host:port, got {server!r}")
        self._host, self._port = url.hostname, url.port or 80
        self._base = f"{url.path.rstrip('/')}/_cortex/workers/{worker_id}"
        self._timeout = timeout_s
        self._wait_s = wait_s
        self._conn: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Send one request, retrying transport errors and 5xx answers with back-off."""
        data = None if body is None else json.dumps(body).encode()
        deadline = time.monotonic() + self._wait_s
        delay = 0.1
        while True:
            try:
                status, text = self._send(method, f"{self._base}/{path}", data)
                if status < 500:
                    break
                problem = f"HTTP {status}: {text[:200]}"
            except _RETRYABLE as e:
                self.close()  # a fresh connection next time
                problem = f"{type(e).__name__}: {e}"
            if time.monotonic() > deadline:
                raise OrchestratorUnreachable(
                    f"the orchestrator did not answer for {self._wait_s:g}s ({problem})"
                )
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
        if status >= 400:
            try:
                message = json.loads(text).get("error", text)
            except (ValueError, AttributeError):
                message = text
            raise WorkerError(f"the orchestrator refused {path}: {message}")
        return json.loads(text)

    def close(self) -> None:
        """Close the connection (the next call opens a new one)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _send(self, method: str, path: str, data: bytes | None) -> tuple[int, str]:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        headers = {"Content-Type": "application/json"} if data is not None else {}
        self._conn.request(method, path, body=data, headers=headers)
        response = self._conn.getresponse()
        text = response.read().decode()
        if response.getheader("connection", "").lower() == "close":
            self.close()
        return response.status, text
