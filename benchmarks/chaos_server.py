"""The orchestrator of benchmarks/chaos.py, killed and restarted on one home and port, and
the watcher that polls its jobs between kills.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import harness
import httpx
from harness import ROOT, progress

API = "bench"


SETTINGS = (
    "visibility_timeout_s=3",
    "heartbeat_interval_s=1",
    "tick_s=0.2",
    "stop_grace_s=3",
)


POLL_S = 0.1


REPORT_EVERY_S = 5.0


START_TIMEOUT_S = 30.0


STUCK_S = 90.0  # no status answer, or no batch finished, for this long: the run is stuck


class HttpError(RuntimeError):
    """The orchestrator answered a request with an error status."""


class Stuck(RuntimeError):
    """The jobs stopped making progress, or the orchestrator stopped answering."""


class Server:
    """An orchestrator subprocess on a fixed home and port that can be killed and restarted."""

    def __init__(self, tmp: Path) -> None:
        self.home = tmp / "home"
        self.log_path = tmp / "orchestrator.log"
        self.port = harness.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = httpx.Client(base_url=self.url, timeout=60)
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._log: IO[bytes] = open(self.log_path, "ab")  # noqa: SIM115 (closed in close())

    def start(self) -> None:
        """Start the orchestrator and wait until it answers (retrying a port still busy)."""
        for attempt in range(5):
            self.starts += 1
            mark = f"=== chaos: start #{self.starts} at {clock()} ===\n"
            self._log.write(mark.encode())
            self._log.flush()
            command = [sys.executable, "-m", "orchestrator", "--home", str(self.home)]
            command += ["--port", str(self.port)]
            for pair in SETTINGS:
                command += ["--set", pair]
            self.proc = subprocess.Popen(
                command,
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self.http.headers.pop("Authorization", None)  # re-read after every start
            if self._wait_healthy():
                return
            progress(f"  orchestrator exited at start (attempt {attempt + 1}); retrying")
            time.sleep(0.5)
        raise RuntimeError(f"the orchestrator would not start; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL the orchestrator and reap it."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Send one request (with the token once there is one) and return its JSON answer."""
        self._authorize()
        if body is None:
            response = self.http.request(method, path)
        else:
            content = json.dumps(body).encode()
            headers = {"Content-Type": "application/json"}
            response = self.http.request(method, path, content=content, headers=headers)
        if response.status_code >= 400:
            raise HttpError(f"{method} {path}: HTTP {response.status_code}: {response.text[:300]}")
        return response.json()

    def result_lines(self, job_id: str) -> list[dict[str, Any]]:
        """Return every result line of the job, as stored."""
        self._authorize()
        lines = []
        with self.http.stream("GET", f"/_cortex/apis/{API}/jobs/{job_id}/results") as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if line.strip():
                    lines.append(json.loads(line))
        return lines

    def close(self) -> None:
        """Kill the orchestrator, then every worker of this URL (they outlive it)."""
        if self.proc is not None and self.proc.poll() is None:
            self.kill()
        harness.kill_workers(self.url)
        self.http.close()
        self._log.close()

    def _authorize(self) -> None:
        if "Authorization" not in self.http.headers:
            token = harness.home_token(self.home)
            if token is not None:
                self.http.headers["Authorization"] = f"Bearer {token}"

    def _wait_healthy(self) -> bool:
        """Wait until the health check answers 200; False if the process exited first."""
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            self._authorize()
            with contextlib.suppress(httpx.TransportError):
                if self.http.get("/_cortex/health", timeout=2).status_code == 200:
                    self._authorize()  # in case the token was written just before answering
                    return True
            time.sleep(0.05)
        raise RuntimeError(f"the orchestrator did not answer within {START_TIMEOUT_S:g}s")


def clock() -> str:
    """Return the wall-clock time to the millisecond, to match the orchestrator's log."""
    return datetime.now().strftime("%H:%M:%S.%f")[:-3]


def statuses(server: Server, jobs: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Return each job's ``job_status`` (``GET /bench/<job_id>``)."""
    return {job_id: server.request("GET", f"/{API}/{job_id}")["job_status"] for job_id in jobs}


def batches_done(found: dict[str, dict[str, Any]]) -> int:
    """Return the batches the jobs have finished, succeeded or failed."""
    return sum(
        s["batch_metrics"]["succeeded"] + s["batch_metrics"]["failed"] for s in found.values()
    )


def all_ended(found: dict[str, dict[str, Any]], jobs: dict[str, int]) -> bool:
    """Return whether every job has a terminal status."""
    return len(found) == len(jobs) and all(
        s["status"] not in harness.IN_PROGRESS for s in found.values()
    )


class Watcher:
    """Polls the jobs' progress, printing a line every few seconds; raises Stuck if stuck."""

    def __init__(self, server: Server, jobs: dict[str, int], started: float) -> None:
        self.server = server
        self.jobs = jobs
        self.total = sum(jobs.values())
        self.started = started
        self.last_report = 0.0
        self.last_answer = self.last_progress = started
        self.done = 0
        self.errors: Counter[str] = Counter()  # error answers to status requests

    def poll(self) -> dict[str, dict[str, Any]] | None:
        """Poll once; return the statuses (None while the orchestrator is away)."""
        found: dict[str, dict[str, Any]] | None = None
        try:
            found = statuses(self.server, self.jobs)
        except httpx.TransportError:
            pass  # restarting: expected
        except HttpError as e:
            if not self.errors[str(e)]:
                progress(f"  status request answered with an error: {e}")
            self.errors[str(e)] += 1
        now = time.monotonic()
        if found is not None:
            self.last_answer = now
            done = batches_done(found)
            if done != self.done or all_ended(found, self.jobs):
                self.done, self.last_progress = done, now
        if now - self.last_report >= REPORT_EVERY_S:
            self.last_report = now
            states = Counter(s["status"] for s in (found or {}).values())
            shown = ", ".join(f"{n}x{state}" for state, n in sorted(states.items()))
            progress(
                f"  t={now - self.started:5.1f}s {self.done:,}/{self.total:,} batches"
                f" done; {shown or 'orchestrator away'}"
            )
        if now - self.last_answer > STUCK_S:
            raise Stuck(f"the orchestrator has not answered a status request for {STUCK_S:g}s")
        if now - self.last_progress > STUCK_S:
            raise Stuck(f"no batch finished for {STUCK_S:g}s ({self.done:,} done)")
        return found

    def until(self, fraction: float) -> bool:
        """Wait until that fraction of all batches is done; False if every job ended first."""
        while True:
            found = self.poll()
            if found is not None:
                if all_ended(found, self.jobs):
                    return False
                if self.done >= fraction * self.total:
                    return True
            time.sleep(POLL_S)

    def until_ended(self, timeout_s: float) -> dict[str, dict[str, Any]] | None:
        """Wait until every job has ended; return the statuses, or None on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self.poll()
            if found is not None and all_ended(found, self.jobs):
                return found
            time.sleep(POLL_S)
        return None

    def restarted(self) -> None:
        """Note that the orchestrator was just restarted: its downtime is not a stall."""
        self.last_answer = self.last_progress = time.monotonic()
