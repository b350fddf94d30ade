"""The HTTP API under load: many submitters and status readers, then abandoned log followers.

load
    One job keeps 8 workers busy (batches of 50 ms) while 50 submitter threads (quick: 20),
    each with its own connection, submit 10 small jobs each (quick: 5; 4 items in 2 batches,
    1 worker) back to back, and 4 reader threads read the busy job's status
    (``GET /bench/<job_id>``) in a loop until the submitters are done. Measured: the latency of
    every submit and every status read (count, p50, p99, max) and every error: an answer other
    than 2xx (kept with its body), a timeout or a transport error.
followers
    One job runs on 2 workers that print nothing. Status latency from 50 sequential reads
    (quick: 30); then 100 log followers (``GET /_cortex/apis/bench/jobs/<job_id>/logs?follow=true``
    on raw sockets) wait up to 5 s for the response and its first log lines, stay 0.5 s more
    (idle: no new lines come), and hang up abruptly (RST); then two
    connections read the status back to back: one starting reads for 2 s after the hang-up
    ("immediately"), one from 2 s after it ("after": 50 reads, quick 30, and on until the
    server answers normally), so that a first read that hangs does not hide how the server
    does by then. Also: how long after the hang-up the server answers normally again (3 reads
    in a row, each under max(5 x the p99 before, 100 ms)). The job has a timeout, so a server
    whose followers outlive their clients gets its threads back when the job ends: the job
    status the first normal read returns then says so.

Every request has a 30 s timeout; one that runs out counts as an error, with the time it
waited (a lower bound) among the latencies. The figures hold only with no errors. Every thread
shares this one Python process (and its GIL) and the machine with the server and its workers:
latencies are what such a client sees, its own overhead included.

Usage: python benchmarks/load.py [--quick] [--only load|followers] [--out FILE]

Prints progress lines, a table, and last a ``key=value`` line.
"""

from __future__ import annotations

import argparse
import json
import math
import selectors
import signal
import socket
import struct
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import harness
import httpx
from harness import progress

SECTIONS = ("load", "followers")
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
HEADLINE_KEYS = (
    "status_p50_ms",
    "status_p99_ms",
    "submit_p50_ms",
    "submit_p99_ms",
    "followers_status_p99_ms_after",
    "load_errors",
    "followers_recovered_s",
)


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


# ---------------------------------------------------------------------------------- load


def bench_load(sizes: Sizes, report: Report) -> None:
    """Concurrent submitters and status readers while a job keeps 8 workers busy."""
    with harness.orchestrator() as server:
        api = server.deploy()
        busy = server.submit(api, busy_job(sizes.busy_batches, BUSY_WORKERS))
        wait_progress(server, busy, timeout_s=60)
        progress(f"load: job {busy.job_id} keeps {BUSY_WORKERS} workers busy")
        reads, submits = Calls(), Calls()
        started = time.monotonic()
        _run_load(server, api, busy.job_id, sizes, reads, submits)
        wall = time.monotonic() - started
        progress(f"load: {len(submits.items)} submits and {len(reads.items)} reads in {wall:.1f}s")
        busy_status = timed(server.http, "GET", f"/{api}/{busy.job_id}")
        small_jobs = timed(server.http, "GET", f"/{api}?limit=10000")
        _report_load(report, sizes, reads, submits, busy_status, small_jobs, busy.job_id)
        report.figures["load_wall_s"] = wall
        progress("load: stopping the jobs")


def _run_load(
    server: harness.Orchestrator,
    api: str,
    job_id: str,
    sizes: Sizes,
    reads: Calls,
    submits: Calls,
) -> None:
    """Run the readers until every submitter is done (or past its deadline)."""
    stop = threading.Event()
    start = threading.Barrier(sizes.submitters + sizes.readers)
    readers = [
        threading.Thread(target=_reader, args=(server, f"/{api}/{job_id}", start, stop, reads))
        for _ in range(sizes.readers)
    ]
    submitters = [
        threading.Thread(target=_submitter, args=(server, api, sizes, start, submits))
        for _ in range(sizes.submitters)
    ]
    for thread in readers + submitters:
        thread.start()
    for thread in submitters:
        thread.join()
    stop.set()
    for thread in readers:
        thread.join()


def _reader(
    server: harness.Orchestrator,
    url: str,
    start: threading.Barrier,
    stop: threading.Event,
    calls: Calls,
) -> None:
    """Read a job's status back to back until told to stop."""
    with server.client(REQUEST_TIMEOUT_S) as client:
        start.wait(timeout=60)
        while not stop.is_set():
            calls.add(timed(client, "GET", url))


def _submitter(
    server: harness.Orchestrator,
    api: str,
    sizes: Sizes,
    start: threading.Barrier,
    calls: Calls,
) -> None:
    """Submit small jobs back to back; register each for the harness to stop at the end."""
    with server.client(REQUEST_TIMEOUT_S) as client:
        start.wait(timeout=60)
        deadline = time.monotonic() + sizes.submit_deadline_s
        for _ in range(sizes.jobs_per_submitter):
            if time.monotonic() > deadline:
                return
            call = timed(client, "POST", f"/{api}", SMALL_JOB)
            calls.add(call)
            if call.error is None:
                server.jobs.append((api, str(call.body["job_id"])))


def _report_load(
    report: Report,
    sizes: Sizes,
    reads: Calls,
    submits: Calls,
    busy: Call,
    listed: Call,
    busy_id: str,
) -> None:
    """Record and describe what the load section measured."""
    read_summary, submit_summary = Summary.of(reads.items), Summary.of(submits.items)
    figures = report.figures
    read_summary.record(figures, "status")
    submit_summary.record(figures, "submit")
    report.add("load", f"status reads ({sizes.readers} threads)", read_summary)
    report.add("load", f"submits ({sizes.submitters} threads)", submit_summary)
    report.errors["load"] = reads.errors() + submits.errors()
    figures["load_errors"] = len(report.errors["load"])
    planned = sizes.submitters * sizes.jobs_per_submitter
    if submit_summary.count < planned:
        report.notes.append(
            f"load: only {submit_summary.count} of {planned} submits were made within"
            f" {sizes.submit_deadline_s:g}s"
        )
    if busy.error is None:
        status = busy.body["job_status"]
        done = status["batch_metrics"]["succeeded"]
        progress(f"load: the busy job {busy_id} is {status['status']} with {done} batches done")
        if status["status"] != "status_running":
            report.notes.append(f"load: the busy job ended ({status['status']}) before the load")
    if listed.error is None:
        by_status: dict[str, int] = {}
        for job in listed.body.get("jobs", []):
            if job.get("job_id") != busy_id:
                by_status[job["status"]] = by_status.get(job["status"], 0) + 1
        progress(f"load: the small jobs by status at the end: {by_status}")
    for call in (busy, listed):
        if call.error is not None:
            report.notes.append(f"load: after the load: {call.error}")


# ----------------------------------------------------------------------------- followers


def bench_followers(sizes: Sizes, report: Report) -> None:
    """Status latency before and after 100 log followers hang up abruptly."""
    with harness.orchestrator() as server:
        api = server.deploy()
        job = server.submit(
            api, busy_job(10_000, FOLLOWED_WORKERS, timeout_s=sizes.followed_job_timeout_s)
        )
        job_ends = job.at + sizes.followed_job_timeout_s
        wait_progress(server, job, timeout_s=20)
        url = f"/{api}/{job.job_id}"
        with server.client(REQUEST_TIMEOUT_S) as client:
            before = [timed(client, "GET", url) for _ in range(sizes.reads_before)]
        normal_ms = max(5 * Summary.of(before).p99_ms, 100.0)
        progress(
            f"followers: {len(before)} status reads before; normal is under {normal_ms:.0f} ms"
        )
        answers = open_and_abandon(
            server, f"/_cortex/apis/{api}/jobs/{job.job_id}/logs?follow=true", sizes.followers
        )
        hung_up = time.monotonic()
        progress(
            f"followers: {sizes.followers} followers' answers within"
            f" {FIRST_BYTES_WAIT_S:g}s: {answers}; all hung up (RST)"
        )
        # Past the job's end (its timeout) its followers end too: give that 30 s more.
        immediate, late = read_after(
            server, url, hung_up, normal_ms, sizes.reads_after, deadline=job_ends + 30
        )
        _report_followers(report, before, immediate, late, hung_up, normal_ms, answers)
        server.http.timeout = httpx.Timeout(REQUEST_TIMEOUT_S)  # stopping a starved server
        progress("followers: stopping the job")


def open_and_abandon(server: harness.Orchestrator, path: str, count: int) -> dict[str, int]:
    """Open ``count`` streaming requests, wait for their first bytes, then reset them all.

    Returns how many answered each status line, and whether log lines came.
    """
    parts = urlsplit(server.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    token = harness.home_token(server.home)
    auth = "" if token is None else f"Authorization: Bearer {token}\r\n"
    request = f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n{auth}\r\n".encode()
    sockets = []
    for _ in range(count):
        sock = socket.create_connection((host, port), timeout=REQUEST_TIMEOUT_S)
        sock.sendall(request)
        sock.setblocking(False)
        sockets.append(sock)
    answers = _first_bytes(sockets, FIRST_BYTES_WAIT_S)
    for sock in sockets:  # linger 0: close sends RST, an abrupt hang-up
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    return answers


def _first_bytes(sockets: list[socket.socket], wait_s: float) -> dict[str, int]:
    """Read each socket until its response's head and first chunk of log came, or ``wait_s``
    passed; then leave them connected ``SETTLE_S`` more. Count what came, by status line."""
    selector = selectors.DefaultSelector()
    received: dict[socket.socket, bytes] = {}
    for sock in sockets:
        selector.register(sock, selectors.EVENT_READ, data=sock)
        received[sock] = b""
    deadline = time.monotonic() + wait_s
    while selector.get_map() and (left := deadline - time.monotonic()) > 0:
        for key, _ in selector.select(timeout=left):
            ready: socket.socket = key.data
            data = ready.recv(65536)
            received[ready] += data
            head, _, body = received[ready].partition(b"\r\n\r\n")
            if not data or body or not head.startswith(b"HTTP/1.1 200"):
                selector.unregister(ready)
    selector.close()
    time.sleep(SETTLE_S)
    answers: dict[str, int] = {}
    for data in received.values():
        head, _, body = data.partition(b"\r\n\r\n")
        line = head.split(b"\r\n", 1)[0].decode(errors="replace") or "nothing"
        if line.startswith("HTTP/1.1 200"):
            line += ", log lines" if body else ", no log lines yet"
        answers[line] = answers.get(line, 0) + 1
    return answers


def read_after(
    server: harness.Orchestrator,
    url: str,
    since: float,
    normal_ms: float,
    reads_after: int,
    deadline: float,
) -> tuple[list[Call], list[Call]]:
    """Read status back to back from ``since`` on two connections; return both reads.

    One starts reads for ``IMMEDIATE_S``; the other starts at ``since + IMMEDIATE_S`` (so a
    first read that hangs does not hide how the server does by then) and goes on until it
    has made ``reads_after`` reads and the server answers normally, or until ``deadline``
    (``time.monotonic()``).
    """
    immediate: list[Call] = []
    first = threading.Thread(
        target=_read_while, args=(server, url, since + IMMEDIATE_S, deadline, immediate)
    )
    first.start()
    late: list[Call] = []
    with server.client(REQUEST_TIMEOUT_S) as client:
        time.sleep(max(0.0, since + IMMEDIATE_S - time.monotonic()))
        while (left := deadline - time.monotonic()) > 0:
            late.append(timed_with_timeout(client, url, min(REQUEST_TIMEOUT_S, left)))
            if len(late) >= reads_after and recovered_at(late, since, normal_ms) is not None:
                break
    first.join()
    return immediate, late


def _read_while(
    server: harness.Orchestrator, url: str, until: float, deadline: float, calls: list[Call]
) -> None:
    """Read status back to back, starting reads until ``until``, none lasting past ``deadline``."""
    with server.client(REQUEST_TIMEOUT_S) as client:
        while time.monotonic() < until:
            left = deadline - time.monotonic()
            calls.append(timed_with_timeout(client, url, min(REQUEST_TIMEOUT_S, left)))


def timed_with_timeout(client: httpx.Client, url: str, timeout_s: float) -> Call:
    """Time one status read with its own timeout."""
    previous = client.timeout
    client.timeout = httpx.Timeout(timeout_s)
    try:
        return timed(client, "GET", url)
    finally:
        client.timeout = previous


def recovered_at(calls: list[Call], since: float, normal_ms: float) -> float | None:
    """Return when (after ``since``) the first of ``NORMAL_RUN`` normal reads in a row ended.

    "In a row" is in the order the reads ended.
    """
    calls = sorted(calls, key=lambda c: c.started + c.ms / 1000)
    run = 0
    for index, call in enumerate(calls):
        run = run + 1 if call.error is None and call.ms <= normal_ms else 0
        if run == NORMAL_RUN:
            first = calls[index - NORMAL_RUN + 1]
            return first.started + first.ms / 1000 - since
    return None


def _report_followers(
    report: Report,
    before: list[Call],
    immediate: list[Call],
    late: list[Call],
    hung_up: float,
    normal_ms: float,
    answers: dict[str, int],
) -> None:
    """Record and describe what the followers section measured."""
    after = immediate + late
    figures = report.figures
    phases = (
        ("before", before, "status before the followers"),
        ("immediately", immediate, f"status, started < {IMMEDIATE_S:g}s after hang-up"),
        ("after", late, f"status, started >= {IMMEDIATE_S:g}s after hang-up"),
    )
    for name, calls, what in phases:
        summary = Summary.of(calls)
        summary.record(figures, "followers_status", f"_{name}")
        report.add("followers", what, summary)
    figures["followers"] = sum(answers.values())
    figures["followers_with_log"] = sum(
        n for line, n in answers.items() if line.endswith(", log lines")
    )
    refused = [line for line in answers if line.startswith("HTTP/") and " 200 " not in line]
    report.errors["followers"] = [c.error for c in before + after if c.error is not None] + [
        f"{answers[line]} followers answered {line!r}" for line in refused
    ]
    recovered = recovered_at(after, hung_up, normal_ms)
    figures["followers_recovered_s"] = math.nan if recovered is None else recovered
    waited = max((c.started + c.ms / 1000 - hung_up for c in after), default=0.0)
    if recovered is None:
        line = f"not answering normally {waited:.1f}s after the hang-up"
    else:
        line = f"answering normally {recovered:.2f}s after the hang-up"
        status = _status_when_recovered(after, hung_up, recovered)
        if status is not None and status != "status_running":
            line += f" (the job was {status} by then: its end let the followers go)"
    progress(f"followers: {line}")
    report.notes.append(f"followers: {line}")


def _status_when_recovered(calls: list[Call], since: float, recovered: float) -> str | None:
    """Return the job status that the read ending at ``recovered`` returned."""
    for call in calls:
        if call.error is None and abs(call.started + call.ms / 1000 - since - recovered) < 1e-9:
            return str(call.body["job_status"]["status"])
    return None


# ---------------------------------------------------------------------------------- main


def table(report: Report) -> str:
    """Return the measured rows as a fixed-width table."""
    lines = [
        f"{'section':<10} {'requests':<40} {'n':>6} {'p50 ms':>9} {'p99 ms':>9}"
        f" {'max ms':>9} {'errors':>6} {'timeouts':>8}"
    ]
    for section, what, s in report.rows:
        lines.append(
            f"{section:<10} {what:<40} {s.count:>6} {s.p50_ms:>9.1f} {s.p99_ms:>9.1f}"
            f" {s.max_ms:>9.1f} {s.errors:>6} {s.timeouts:>8}"
        )
    return "\n".join(lines)


def describe_errors(report: Report, limit: int = 10) -> list[str]:
    """Return each distinct error once, with how often it came, most frequent first."""
    lines = []
    for section, errors in report.errors.items():
        counts: dict[str, int] = {}
        for error in errors:
            counts[error] = counts.get(error, 0) + 1
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])
        for error, count in ranked[:limit]:
            lines.append(f"{section}: {count} x {error[:2000]}")
        if len(ranked) > limit:
            lines.append(f"{section}: ... and {len(ranked) - limit} more distinct errors")
    return lines


def headline(figures: dict[str, float]) -> str:
    """Return the headline figures as ``key=value`` pairs (``na`` when not measured)."""
    pairs = []
    for key in HEADLINE_KEYS:
        value = figures.get(key)
        if value is None or math.isnan(value):
            pairs.append(f"{key}=na")
        elif isinstance(value, int):
            pairs.append(f"{key}={value}")
        else:
            pairs.append(f"{key}={value:.2f}")
    return " ".join(pairs)


def _finite(value: Any) -> Any:
    """Return ``value`` with every NaN (a figure not measured) replaced by None, for JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts (about a minute)")
    parser.add_argument("--only", choices=SECTIONS, help="run only this section")
    parser.add_argument("--out", type=Path, help="write the figures and errors here as JSON")
    return parser.parse_args(argv)


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    """Turn SIGTERM into KeyboardInterrupt so that every orchestrator is stopped."""
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Run the sections, print the table and errors, write ``--out``, print the headline.

    Exits 1 when a request failed otherwise than by a timeout (an answer other than 2xx).
    """
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    sizes = QUICK if args.quick else FULL
    sections = [args.only] if args.only else list(SECTIONS)
    runners = {"load": bench_load, "followers": bench_followers}
    report = Report()
    progress(f"load benchmark ({'quick' if args.quick else 'full'}): {', '.join(sections)}")
    try:
        for name in sections:
            started = time.monotonic()
            runners[name](sizes, report)
            progress(f"{name}: done in {time.monotonic() - started:.1f}s")
    except KeyboardInterrupt:
        progress("interrupted: every orchestrator and worker was stopped")
        return 130
    print(table(report))
    for line in report.notes + describe_errors(report):
        print(line)
    errors = [e for section in report.errors.values() for e in section]
    if errors:
        print(
            f"{len(errors)} errors: the figures of a row with errors are not valid, or (when"
            f" only timeouts) a lower bound: a timeout counts with the {REQUEST_TIMEOUT_S:g}s"
            " it waited"
        )
    if args.out is not None:
        out = {"sizes": asdict(sizes), **asdict(report)}
        out["rows"] = [{"section": s, "what": w, **asdict(x)} for s, w, x in report.rows]
        args.out.write_text(json.dumps(_finite(out), indent=2, default=str) + "\n")
        progress(f"wrote {args.out}")
    print(headline(report.figures), flush=True)
    # Timeouts after the followers are what that section measures; anything else is a failure.
    return 1 if [e for e in errors if not e.startswith("timeout")] else 0


if __name__ == "__main__":
    sys.exit(main())
