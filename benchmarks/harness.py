"""Shared pieces of the benchmarks: a real orchestrator subprocess and what to measure on it.

``orchestrator()`` starts ``python -m orchestrator`` on a free loopback port with a
temporary home (and, optionally, a fresh ``CORTEX_WORKER_TRACE`` directory that its
workers inherit) and always stops it, with every job and worker it ran, on the way out:
a clean exit, an error or Ctrl-C. ``Orchestrator`` wraps the public HTTP API (deploy,
submit, poll, stop, results) and reads the server's resident memory from ``/proc``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
BENCH_API = ROOT / "benchmarks" / "apis" / "bench"
POLL_S = 0.02
ENQUEUING = "status_enqueuing"
IN_PROGRESS = ("status_enqueuing", "status_running")


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: Sequence[float], q: float) -> float:
    """Return the ``q``-th percentile (0-100) of ``values``, interpolating linearly."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def memory_mb(pid: int) -> tuple[float, float]:
    """Return a process's resident memory and its peak (VmRSS, VmHWM) in MiB."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024  # the kernel reports kB
    return fields["VmRSS"], fields["VmHWM"]


class JobFailed(RuntimeError):
    """A benchmark job ended otherwise than it should have."""


@dataclass(frozen=True)
class Submitted:
    """A job as submitted."""

    api: str
    job_id: str
    at: float  # time.monotonic() just before the request (the body already encoded)
    response_s: float  # how long the submit request took


@dataclass
class Finished:
    """How a job ended as a polling user saw it (times are ``time.monotonic()``)."""

    status: dict[str, Any]
    submitted: float  # Submitted.at
    seen: float  # when the poll that saw the end returned

    @property
    def elapsed_s(self) -> float:
        """Return the seconds from submitting to seeing the end."""
        return self.seen - self.submitted


@dataclass
class Orchestrator:
    """A running orchestrator subprocess and an HTTP client for it."""

    proc: subprocess.Popen[bytes]
    url: str
    home: Path
    trace_dir: Path | None
    http: httpx.Client
    jobs: list[tuple[str, str]] = field(default_factory=list)

    @property
    def pid(self) -> int:
        """Return the orchestrator's process id."""
        return self.proc.pid

    def memory_mb(self) -> tuple[float, float]:
        """Return the orchestrator's resident memory and its peak so far, in MiB."""
        return memory_mb(self.pid)

    def client(self, timeout: float) -> httpx.Client:
        """Return a new client of this server (sending its token, if any), e.g. for a thread."""
        token = home_token(self.home)
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return httpx.Client(base_url=self.url, timeout=timeout, headers=headers)

    def deploy(self, project_dir: Path = BENCH_API) -> str:
        """Deploy the project's (single) API and return its name."""
        answer = self._ok(self.http.post("/_cortex/apis", json={"project_dir": str(project_dir)}))
        return str(answer["apis"][0]["name"])

    def submit(self, api: str, body: dict[str, Any] | bytes) -> Submitted:
        """Submit a job, its body encoded before the clock starts."""
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        at = time.monotonic()
        response = self.http.post(
            f"/{api}", content=content, headers={"Content-Type": "application/json"}
        )
        response_s = time.monotonic() - at
        job = Submitted(api, str(self._ok(response)["job_id"]), at, response_s)
        self.jobs.append((api, job.job_id))
        return job

    def status(self, api: str, job_id: str) -> dict[str, Any]:
        """Return the job's ``job_status`` object."""
        return dict(self._ok(self.http.get(f"/{api}/{job_id}"))["job_status"])

    def wait(self, job: Submitted, *, until_not: Sequence[str] = IN_PROGRESS) -> Finished:
        """Poll every 20 ms until the job's status leaves ``until_not``."""
        while True:
            status = self.status(job.api, job.job_id)
            if status["status"] not in until_not:
                return Finished(status, job.at, time.monotonic())
            time.sleep(POLL_S)

    def run_job(self, api: str, body: dict[str, Any]) -> tuple[Submitted, Finished]:
        """Submit a job, wait until it ends, and insist that it succeeded."""
        job = self.submit(api, body)
        finished = self.wait(job)
        if finished.status["status"] != "status_succeeded":
            raise JobFailed(
                f"job {job.job_id} ended {finished.status['status']}:"
                f" {finished.status.get('message')}"
            )
        return job, finished

    def stop_job(self, api: str, job_id: str) -> None:
        """Stop a job if it is still in progress (its workers get SIGTERM)."""
        response = self.http.delete(f"/{api}/{job_id}")
        if response.status_code not in (200, 409):
            self._ok(response)

    def results(self, api: str, job_id: str) -> dict[int, Any]:
        """Return each batch's ``predict`` result, by batch index."""
        url = f"/_cortex/apis/{api}/jobs/{job_id}/results"
        by_batch: dict[int, Any] = {}
        with self.http.stream("GET", url) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if not line:
                    continue
                record = json.loads(line)
                index = int(record["batch_index"])
                if record.get("batch_result"):
                    by_batch[index] = record["result"]
                else:  # a list as long as its batch comes back one line per item
                    by_batch.setdefault(index, []).append(record["result"])
        return by_batch

    def wait_workers_exited(self, timeout_s: float = 20.0) -> bool:
        """Wait until no worker process of this server is left; return whether none is."""
        return _wait_until(lambda: not worker_pids(self.url), timeout_s)

    def traces(self) -> list[dict[str, Any]]:
        """Return every batch record the workers wrote to the trace directory.

        Each record also gets ``worker``: the trace file it came from.
        """
        if self.trace_dir is None:
            return []
        records = []
        for path in sorted(self.trace_dir.glob("*.jsonl")):
            for line in path.read_text().splitlines():
                if line.strip():
                    records.append({**json.loads(line), "worker": path.stem})
        return records

    def close(self) -> None:
        """Stop unfinished jobs and their workers, then the server.

        Workers go first: the server's graceful shutdown waits for their open connections.
        """
        for api, job_id in self.jobs:
            with contextlib.suppress(httpx.HTTPError, JobFailed):
                self.stop_job(api, job_id)
        self.http.close()
        self.wait_workers_exited(timeout_s=3.0)  # the workers of ended jobs leave by themselves
        kill_workers(self.url)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        kill_workers(self.url)

    def _ok(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise JobFailed(f"{response.request.method} {response.request.url}: {response.text}")
        return response.json()


def worker_pids(url: str) -> list[int]:
    """Return the pids of ``python -m runtime`` workers launched to reach the server at ``url``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv]
        if "runtime" in args and "--transport" in args and url in args:
            pids.append(int(entry.name))
    return pids


def kill_workers(url: str, grace_s: float = 5.0) -> None:
    """End the workers of the server at ``url``: SIGTERM their sessions, then SIGKILL.

    Process-backend workers run in their own sessions and outlive their server (they wait
    for it to come back), so stopping the server is not enough.
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = worker_pids(url)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)
        _wait_until(lambda: not worker_pids(url), timeout_s=grace_s)


def _wait_until(condition: Callable[[], bool], timeout_s: float) -> bool:
    """Check ``condition`` every 50 ms until it holds or ``timeout_s`` passes; return it."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@contextlib.contextmanager
def orchestrator(*, trace: bool = False, settings: Sequence[str] = ()) -> Iterator[Orchestrator]:
    """Run a fresh orchestrator with a temporary home for the length of the block.

    Args:
        trace: Give it (and so its workers) a fresh ``CORTEX_WORKER_TRACE`` directory.
        settings: ``KEY=VALUE`` settings passed as ``--set``.
    """
    with tempfile.TemporaryDirectory(prefix="cortex-bench-") as tmp:
        home = Path(tmp) / "home"
        trace_dir = Path(tmp) / "traces" if trace else None
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("CORTEX_WORKER_TRACE", None)
        if trace_dir is not None:
            trace_dir.mkdir()
            env["CORTEX_WORKER_TRACE"] = str(trace_dir)
        port = free_port()
        command = [sys.executable, "-m", "orchestrator", "--home", str(home), "--port", str(port)]
        for pair in settings:
            command += ["--set", pair]
        log = open(Path(tmp) / "orchestrator.log", "wb")  # noqa: SIM115 (closed below)
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        url = f"http://127.0.0.1:{port}"
        server = Orchestrator(proc, url, home, trace_dir, httpx.Client(base_url=url, timeout=600))
        try:
            _wait_healthy(server, Path(tmp) / "orchestrator.log")
            yield server
        finally:
            server.close()
            log.close()


def home_token(home: Path) -> str | None:
    """Return the API token the orchestrator of ``home`` wrote (``HOME/token``), if any."""
    try:
        return (home / "token").read_text().strip() or None
    except OSError:
        return None


def _wait_healthy(server: Orchestrator, log_path: Path, timeout_s: float = 30.0) -> None:
    """Wait until the server answers its health check; fail with its log if it dies.

    Once the server has written its token, every request of ``server.http`` sends it.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"the orchestrator exited at start:\n{log_path.read_text()[-3000:]}")
        token = home_token(server.home)
        if token is not None:
            server.http.headers["Authorization"] = f"Bearer {token}"
        with contextlib.suppress(httpx.TransportError):
            if server.http.get("/_cortex/health", timeout=2).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"the orchestrator did not answer within {timeout_s:g}s")


def progress(message: str) -> None:
    """Print one progress line, flushed."""
    print(message, flush=True)
