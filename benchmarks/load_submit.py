"""The load section of benchmarks/load.py: submitters and status readers against busy workers."""

from __future__ import annotations

import threading
import time

import harness
from harness import progress
from load_common import (
    BUSY_WORKERS,
    REQUEST_TIMEOUT_S,
    SMALL_JOB,
    Call,
    Calls,
    Report,
    Sizes,
    Summary,
    busy_job,
    timed,
    wait_progress,
)


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
