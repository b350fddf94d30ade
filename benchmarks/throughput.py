"""Sections that push no-op batches through the orchestrator: dispatch, scale, status.

dispatch
    No-op batches of 1 item on 1, 2 and 4 workers: batches/s end to end (submit to
    status_succeeded, as a polling user sees it) and steady state (first lease to last ack,
    from the workers' ``CORTEX_WORKER_TRACE`` files), lease-to-ack p50/p99 per batch, and
    the worker time outside ``predict`` per batch.
scale
    No-op jobs of growing size on 4 workers, each on a fresh orchestrator: total time and
    peak RSS, and the log-log slope of time against batches.
status
    ``GET /<api>/<job_id>`` latency p50/p99 while 8 workers run a fast no-op job.
"""

from __future__ import annotations

import math
import time
from typing import Any

import harness
import report
from harness import progress
from plan import Figures, Options, Results

SCALE_WORKERS = 4
STATUS_WORKERS = 8


def bench_dispatch(options: Options, results: Results) -> None:
    """No-op batches of 1 item with 1, 2 and 4 workers: batches/s and lease-to-ack."""
    count = options.sizes.dispatch_batches
    for workers in options.sizes.dispatch_workers:
        with harness.orchestrator(trace=True) as server:
            api = server.deploy()
            _, finished = server.run_job(api, _noop_job(count, workers))
            server.wait_workers_exited()  # they write their traces as they exit
            traces = server.traces()
        e2e = count / finished.elapsed_s
        results.figures[f"dispatch_e2e_bps_{workers}w"] = e2e
        line = f"dispatch {workers}w: {count} batches, e2e {e2e:.0f}/s"
        if traces:
            line += ", " + _record_traces(results.figures, f"{workers}w", traces, finished)
            if len(traces) != count:
                line += f" (only {len(traces)} batches traced)"
        else:
            line += "; no worker traces (CORTEX_WORKER_TRACE not written)"
        progress(line)


def _record_traces(
    figures: Figures, suffix: str, traces: list[dict[str, Any]], finished: harness.Finished
) -> str:
    """Record steady batches/s, lease-to-ack p50/p99, overhead, start-up and tail; describe them.

    Lease-to-ack includes the time a batch waits in its worker's prefetch behind the
    others of its lease. The per-batch overhead is each worker's time from its first
    lease to its last ack not spent in ``predict``, summed over workers, per batch.
    """
    first_lease = min(t["leased"] for t in traces)
    last_ack = max(t["acked"] for t in traces)
    steady = len(traces) / (last_ack - first_lease)
    lease_ack_ms = [1000 * (t["acked"] - t["leased"]) for t in traces]
    p50, p99 = harness.percentile(lease_ack_ms, 50), harness.percentile(lease_ack_ms, 99)
    startup, tail = first_lease - finished.submitted, finished.seen - last_ack
    by_worker: dict[str, list[dict[str, Any]]] = {}
    for t in traces:
        by_worker.setdefault(t["worker"], []).append(t)
    outside_predict = sum(
        max(t["acked"] for t in rows)
        - min(t["leased"] for t in rows)
        - sum(t["finished"] - t["started"] for t in rows)
        for rows in by_worker.values()
    )
    overhead_us = 1e6 * outside_predict / len(traces)
    figures[f"dispatch_overhead_us_{suffix}"] = overhead_us
    figures[f"dispatch_bps_{suffix}"] = steady
    figures[f"dispatch_lease_ack_p50_ms_{suffix}"] = p50
    figures[f"dispatch_lease_ack_p99_ms_{suffix}"] = p99
    figures[f"dispatch_startup_s_{suffix}"] = startup
    figures[f"dispatch_tail_s_{suffix}"] = tail
    return (
        f"steady {steady:.0f}/s, lease->ack p50 {p50:.2f} ms p99 {p99:.2f} ms,"
        f" overhead {overhead_us:.0f} us/batch,"
        f" submit->first lease {startup:.2f}s, last ack->seen succeeded {tail:.2f}s"
    )


def _noop_job(batches: int, workers: int) -> dict[str, object]:
    """Return a job of ``batches`` no-op batches of one item each."""
    return {
        "workers": workers,
        "item_list": {"items": list(range(batches)), "batch_size": 1},
        "config": {"stamp": False},
    }


def bench_scale(options: Options, results: Results) -> None:
    """No-op jobs of growing size, each on a fresh orchestrator: total time and peak RSS."""
    for batches in options.sizes.scale_batches:
        with harness.orchestrator() as server:
            api = server.deploy()
            _, finished = server.run_job(api, _noop_job(batches, SCALE_WORKERS))
            _, peak = server.memory_mb()
        label = _count_label(batches)
        results.figures[f"scale_{label}_s"] = finished.elapsed_s
        results.figures[f"rss_{label}_mb"] = peak
        results.scale.append(report.ScalePoint(batches, finished.elapsed_s, peak))
        progress(
            f"scale {label}: {finished.elapsed_s:.2f}s ({batches / finished.elapsed_s:.0f}"
            f" batches/s), peak RSS {peak:.0f} MB"
        )
    if len(results.scale) >= 2:
        points = results.scale
        results.figures["scale_slope"] = loglog_slope([(p.batches, p.total_s) for p in points])
        results.figures["scale_rss_slope"] = loglog_slope([(p.batches, p.rss_mb) for p in points])
        # Fixed start-up flattens the overall slope; the largest step shows the per-batch cost.
        results.figures["scale_top_slope"] = loglog_slope(
            [(p.batches, p.total_s) for p in points[-2:]]
        )
        progress(
            f"scale: time slope {results.figures['scale_slope']:.2f}"
            f" ({results.figures['scale_top_slope']:.2f} between the two largest),"
            f" RSS slope {results.figures['scale_rss_slope']:.2f} (log-log)"
        )


def loglog_slope(points: list[tuple[float, float]]) -> float:
    """Return the least-squares slope of log(y) against log(x)."""
    xs = [math.log(x) for x, _ in points]
    ys = [math.log(y) for _, y in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread


def _count_label(count: int) -> str:
    """Return ``1k``, ``30k``, ``1m`` and so on for a batch count."""
    if count >= 1_000_000 and count % 1_000_000 == 0:
        return f"{count // 1_000_000}m"
    if count >= 1_000 and count % 1_000 == 0:
        return f"{count // 1_000}k"
    return str(count)


def bench_status(options: Options, results: Results) -> None:
    """Sequential status requests while 8 workers run a fast no-op job."""
    sizes = options.sizes
    with harness.orchestrator() as server:
        api = server.deploy()
        job = server.submit(api, _noop_job(sizes.status_batches, STATUS_WORKERS))
        status = server.wait(job, until_not=(harness.ENQUEUING,)).status
        while status["status"] == "status_running" and not status["batch_metrics"]["succeeded"]:
            time.sleep(harness.POLL_S)
            status = server.status(api, job.job_id)
        latencies_ms: list[float] = []
        while len(latencies_ms) < sizes.status_requests and status["status"] == "status_running":
            started = time.perf_counter()
            status = server.status(api, job.job_id)
            latencies_ms.append(1000 * (time.perf_counter() - started))
        done = status["batch_metrics"]["succeeded"]
        server.stop_job(api, job.job_id)
    if not latencies_ms:
        raise harness.JobFailed(f"the job ended ({status['status']}) before any status request")
    p50, p99 = harness.percentile(latencies_ms, 50), harness.percentile(latencies_ms, 99)
    results.figures["status_p50_ms"] = p50
    results.figures["status_p99_ms"] = p99
    results.figures["status_requests"] = len(latencies_ms)
    short = "" if len(latencies_ms) == sizes.status_requests else " (the job ended first)"
    progress(
        f"status: {len(latencies_ms)} requests under load{short}: p50 {p50:.2f} ms,"
        f" p99 {p99:.2f} ms ({done} batches done meanwhile)"
    )
