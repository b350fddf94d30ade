"""What both sections of benchmarks/load.py share: sizes, timed calls and their summaries,
and the busy job they measure against.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import harness
import httpx

REQUEST_TIMEOUT_S = 30.0


JSON = {"Content-Type": "application/json"}


BUSY_WORKERS = 8


BUSY_SLEEP_S = 0.05


FOLLOWED_WORKERS = 2


SMALL_JOB = json.dumps(
    {"workers": 1, "item_list": {"items": [1, 2, 3, 4], "batch_size": 2}, "config": {"sleep_s": 0}}
).encode()


FIRST_BYTES_WAIT_S = 5.0


SETTLE_S = 0.5  # followers stay connected this long after their first log lines came


IMMEDIATE_S = 2.0  # reads started this soon after the hang-up are "immediately"


NORMAL_RUN = 3  # this many normal reads in a row: the server answers normally again


@dataclass(frozen=True)
class Sizes:
    """How much load each section makes, and its time bounds."""

    submitters: int
    jobs_per_submitter: int
    readers: int
    busy_batches: int
    submit_deadline_s: float  # submitters stop submitting this long after they start
    followers: int
    reads_before: int
    reads_after: int
    followed_job_timeout_s: float  # ends the followed job, and so any follower it holds


FULL = Sizes(
    submitters=50,
    jobs_per_submitter=10,
    readers=4,
    busy_batches=20_000,
    submit_deadline_s=80.0,
    followers=100,
    reads_before=50,
    reads_after=50,
    followed_job_timeout_s=60.0,
)


QUICK = Sizes(
    submitters=20,
    jobs_per_submitter=5,
    readers=4,
    busy_batches=10_000,
    submit_deadline_s=40.0,
    followers=100,
    reads_before=30,
    reads_after=30,
    followed_job_timeout_s=30.0,
)


@dataclass
class Call:
    """One timed request."""

    started: float  # time.monotonic() before the request
    ms: float  # until the answer, or until it failed
    error: str | None = None  # None for a 2xx answer
    body: Any = None  # the parsed JSON answer, when it is one


@dataclass
class Calls:
    """Timed requests of one kind, appended to from several threads."""

    items: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, call: Call) -> None:
        """Record one request."""
        with self.lock:
            self.items.append(call)

    def errors(self) -> list[str]:
        """Return every error, in order."""
        return [c.error for c in self.items if c.error is not None]


@dataclass(frozen=True)
class Summary:
    """Count, percentiles and errors of some requests."""

    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    timeouts: int

    @staticmethod
    def of(calls: list[Call]) -> Summary:
        """Summarise ``calls`` (timed-out ones count with the time they waited)."""
        ms = [c.ms for c in calls]
        errors = [c.error for c in calls if c.error is not None]
        return Summary(
            count=len(calls),
            p50_ms=harness.percentile(ms, 50),
            p99_ms=harness.percentile(ms, 99),
            max_ms=max(ms, default=math.nan),
            errors=len(errors),
            timeouts=sum(e.startswith("timeout") for e in errors),
        )

    def record(self, figures: dict[str, float], prefix: str, suffix: str = "") -> None:
        """Store the summary as ``<prefix>_<figure>_ms<suffix>`` figures."""
        figures[f"{prefix}_count{suffix}"] = self.count
        for name in ("p50", "p99", "max"):
            figures[f"{prefix}_{name}_ms{suffix}"] = getattr(self, f"{name}_ms")
        figures[f"{prefix}_errors{suffix}"] = self.errors
        figures[f"{prefix}_timeouts{suffix}"] = self.timeouts


@dataclass
class Report:
    """What the run measured: figures, table rows, and the errors seen."""

    figures: dict[str, float] = field(default_factory=dict)
    rows: list[tuple[str, str, Summary]] = field(default_factory=list)
    errors: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, section: str, what: str, summary: Summary) -> None:
        """Add one row of the table."""
        self.rows.append((section, what, summary))


def timed(client: httpx.Client, method: str, url: str, content: bytes | None = None) -> Call:
    """Send one request and time it; any answer but 2xx, or a failure, is an error."""
    started = time.monotonic()
    try:
        if content is None:
            response = client.request(method, url)
        else:
            response = client.request(method, url, content=content, headers=JSON)
    except httpx.TimeoutException as e:
        elapsed = time.monotonic() - started
        return Call(started, 1000 * elapsed, f"timeout after {elapsed:.1f}s ({type(e).__name__})")
    except httpx.HTTPError as e:
        elapsed = time.monotonic() - started
        return Call(started, 1000 * elapsed, f"{type(e).__name__}: {e}")
    ms = 1000 * (time.monotonic() - started)
    if not 200 <= response.status_code < 300:
        return Call(started, ms, f"HTTP {response.status_code} {method} {url}: {response.text}")
    try:
        return Call(started, ms, body=response.json())
    except ValueError:
        return Call(started, ms, f"HTTP {response.status_code} {method} {url}: not JSON")


def timed_with_timeout(client: httpx.Client, url: str, timeout_s: float) -> Call:
    """Time one status read with its own timeout."""
    previous = client.timeout
    client.timeout = httpx.Timeout(timeout_s)
    try:
        return timed(client, "GET", url)
    finally:
        client.timeout = previous


def busy_job(batches: int, workers: int, timeout_s: float | None = None) -> dict[str, Any]:
    """Return a job of ``batches`` silent 50 ms batches of one item each."""
    body: dict[str, Any] = {
        "workers": workers,
        "item_list": {"items": list(range(batches)), "batch_size": 1},
        "config": {"sleep_s": BUSY_SLEEP_S, "stamp": False},
    }
    if timeout_s is not None:
        body["timeout"] = timeout_s
    return body


def wait_progress(server: harness.Orchestrator, job: harness.Submitted, timeout_s: float) -> None:
    """Wait until the job is running and has finished a batch; fail past ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = server.status(job.api, job.job_id)
        if status["status"] not in harness.IN_PROGRESS:
            raise harness.JobFailed(f"job {job.job_id} ended {status['status']} too soon")
        if status["status"] == "status_running" and status["batch_metrics"]["succeeded"]:
            return
        time.sleep(harness.POLL_S)
    raise harness.JobFailed(f"job {job.job_id} did not finish a batch within {timeout_s:g}s")
