"""The benchmark suite: dispatch, efficiency, submit, scale and status, against a real orchestrator.

Usage::

    python benchmarks/run.py                 # full sizes (long: the scale section runs 1M batches)
    python benchmarks/run.py --quick         # small sizes, under about 2 minutes on 2 cores
    python benchmarks/run.py --only dispatch status --out /tmp/bench

Sections (each on fresh orchestrators with temporary homes, see ``harness.py``):

dispatch
    No-op batches of 1 item on 1, 2 and 4 workers: batches/s end to end (submit to
    status_succeeded, as a polling user sees it) and steady state (first lease to last ack,
    from the workers' ``CORTEX_WORKER_TRACE`` files), and lease-to-ack p50/p99 per batch.
efficiency
    A 20 ms predictor on 4 workers against the ideal ``batches * 0.020 / 4``, and the same
    predictor through ``multiprocessing.Pool(4)`` and Ray Data (see ``baselines.py``).
submit
    A 10 MB ``item_list`` (HTTP response time, enqueue time) and a 1 GB (quick: 100 MB)
    ``delimited_files`` source (enqueue MB/s, items/s, orchestrator peak RSS).
scale
    No-op jobs of growing size on 4 workers: total time and orchestrator peak RSS, and the
    log-log slope of time against batches.
status
    ``GET /<api>/<job_id>`` latency p50/p99 while 8 workers run a fast no-op job.

Writes ``<out>/<full|quick>.json``, ``.md`` and ``scale-<full|quick>.png`` (``report.py``);
prints one progress line per measurement and, last, every figure as ``key=value`` pairs.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import baselines
import harness
import report
from harness import progress

Figures = dict[str, float | None]
SECTIONS = ("dispatch", "efficiency", "submit", "scale", "status")
# The keys the last line always carries ("na" when not measured).
HEADLINE_KEYS = (
    "efficiency_vs_pool",
    "efficiency_vs_ray",
    "steady_vs_ray",
    "dispatch_bps_4w",
    "dispatch_e2e_bps_4w",
    "submit_10mb_s",
    "rss_1m_mb",
    "status_p99_ms",
    "scale_slope",
)
SLEEP_S = 0.020
EFFICIENCY_WORKERS = 4
SCALE_WORKERS = 4
STATUS_WORKERS = 8
ITEM_CHARS = 96  # 100k items make a body of 10.0 MB, under the 10 MiB limit
FILE_BATCH_SIZE = 100
FILE_CHUNK_MB = 100


@dataclass(frozen=True)
class Sizes:
    """How big each section's jobs are."""

    dispatch_batches: int
    dispatch_workers: tuple[int, ...]
    efficiency_batches: int
    submit_items: int
    files_mb: int
    scale_batches: tuple[int, ...]
    status_requests: int
    status_batches: int


FULL = Sizes(
    dispatch_batches=20_000,
    dispatch_workers=(1, 2, 4),
    efficiency_batches=2_000,
    submit_items=100_000,
    files_mb=1_000,
    scale_batches=(1_000, 10_000, 100_000, 1_000_000),
    status_requests=1_000,
    status_batches=400_000,
)
QUICK = Sizes(
    dispatch_batches=2_000,
    dispatch_workers=(1, 2, 4),
    efficiency_batches=400,
    submit_items=100_000,
    files_mb=100,
    scale_batches=(1_000, 10_000, 30_000),
    status_requests=300,
    status_batches=100_000,
)
# For the test suite (hidden --tiny): every section in seconds.
TINY = Sizes(
    dispatch_batches=200,
    dispatch_workers=(1, 2, 4),
    efficiency_batches=40,
    submit_items=2_000,
    files_mb=1,
    scale_batches=(100, 300),
    status_requests=50,
    status_batches=20_000,
)


@dataclass(frozen=True)
class Options:
    """What to run: the sizes, and whether to run the Ray baseline."""

    sizes: Sizes
    use_ray: bool


@dataclass
class Results:
    """Everything measured so far."""

    figures: Figures = field(default_factory=dict)
    scale: list[report.ScalePoint] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


# --- dispatch ---------------------------------------------------------------------------


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


# --- efficiency ---------------------------------------------------------------------------


def bench_efficiency(options: Options, results: Results) -> None:
    """A 20 ms predictor on 4 workers, against the ideal, a Pool of 4 and Ray Data."""
    count = options.sizes.efficiency_batches
    ideal = count * SLEEP_S / EFFICIENCY_WORKERS
    config = {"sleep_s": SLEEP_S, "stamp": True}
    figures = results.figures
    figures["eff_ideal_s"] = ideal

    with harness.orchestrator() as server:
        api = server.deploy()
        body = {
            "workers": EFFICIENCY_WORKERS,
            "item_list": {"items": list(range(count)), "batch_size": 1},
            "config": config,
        }
        job, finished = server.run_job(api, body)
        stamps = list(server.results(api, job.job_id).values())
    _record_system(figures, "ours", ideal, finished.elapsed_s, baselines.steady_window(stamps))
    figures["eff_ours_startup_s"] = min(start for start, _ in stamps) - finished.submitted
    figures["eff_ours_tail_s"] = finished.seen - max(end for _, end in stamps)
    progress(
        f"efficiency ours: submit->first predict {figures['eff_ours_startup_s']:.2f}s,"
        f" last predict->seen succeeded {figures['eff_ours_tail_s']:.2f}s"
    )

    batches = [[index] for index in range(count)]
    pool = baselines.run_pool(batches, config)
    _record_system(figures, "pool", ideal, pool.wall_s, pool.steady_s)
    figures["efficiency_vs_pool"] = figures["efficiency_ours"] / figures["efficiency_pool"]

    if not options.use_ray:
        progress("efficiency ray: skipped (--no-ray)")
    elif baselines.ray_version() is None:
        progress("efficiency ray: skipped: ray is not importable (pip install 'ray[data]')")
    else:
        ray = baselines.run_ray(batches, config)
        _record_system(figures, "ray", ideal, ray.wall_s, ray.steady_s)
        figures["efficiency_vs_ray"] = figures["efficiency_ours"] / figures["efficiency_ray"]
        figures["steady_vs_ray"] = ray.steady_s / figures["eff_ours_steady_s"]
    progress(
        "efficiency: "
        + ", ".join(
            f"{key}={report.format_value(figures.get(key))}"
            for key in ("efficiency_vs_pool", "efficiency_vs_ray", "steady_vs_ray")
        )
    )


def _record_system(figures: Figures, name: str, ideal: float, wall: float, steady: float) -> None:
    """Record one system's wall and steady times and efficiencies, and print them."""
    figures[f"eff_{name}_wall_s"] = wall
    figures[f"eff_{name}_steady_s"] = steady
    figures[f"efficiency_{name}"] = ideal / wall
    figures[f"efficiency_{name}_steady"] = ideal / steady
    progress(
        f"efficiency {name}: wall {wall:.2f}s (efficiency {ideal / wall:.3f}),"
        f" steady {steady:.2f}s (efficiency {ideal / steady:.3f}), ideal {ideal:.2f}s"
    )


# --- submit ---------------------------------------------------------------------------


def bench_submit(options: Options, results: Results) -> None:
    """A 10 MB item_list and a large delimited_files source: only enqueuing is measured."""
    _submit_item_list(options.sizes, results.figures)
    _submit_files(options.sizes, results.figures)


def _submit_item_list(sizes: Sizes, figures: Figures) -> None:
    """Time a 10 MB item_list submission until the response and until it is enqueued."""
    items = [f"{index:08d}-" + "x" * (ITEM_CHARS - 9) for index in range(sizes.submit_items)]
    body = {
        "workers": 1,
        "item_list": {"items": items, "batch_size": 10},
        "config": {"stamp": False},
    }
    payload = json.dumps(body).encode()
    with harness.orchestrator() as server:
        api = server.deploy()
        job = server.submit(api, payload)
        enqueued = server.wait(job, until_not=(harness.ENQUEUING,))
        server.stop_job(api, job.job_id)
        _, peak = server.memory_mb()
    figures["submit_10mb_body_mb"] = len(payload) / 1e6
    figures["submit_10mb_s"] = job.response_s
    figures["submit_10mb_enqueued_s"] = enqueued.elapsed_s
    figures["submit_10mb_rss_mb"] = peak
    progress(
        f"submit item_list: {len(payload) / 1e6:.1f} MB, {len(items)} items: response"
        f" {job.response_s:.2f}s, enqueued {enqueued.elapsed_s:.2f}s ({enqueued.status['status']}),"
        f" peak RSS {peak:.0f} MB"
    )


def _submit_files(sizes: Sizes, figures: Figures) -> None:
    """Enqueue a generated JSON-lines source on a fresh orchestrator: rate and peak RSS."""
    with tempfile.TemporaryDirectory(prefix="cortex-bench-files-") as tmp:
        started = time.perf_counter()
        total_bytes, lines = write_json_lines(Path(tmp), sizes.files_mb)
        progress(
            f"submit files: wrote {total_bytes / 1e6:.0f} MB, {lines} lines"
            f" in {time.perf_counter() - started:.1f}s"
        )
        with harness.orchestrator() as server:
            api = server.deploy()
            _, idle = server.memory_mb()
            body = {
                "workers": 1,
                "delimited_files": {"s3_paths": [tmp], "batch_size": FILE_BATCH_SIZE},
                "config": {"stamp": False},
            }
            job = server.submit(api, body)
            enqueued = server.wait(job, until_not=(harness.ENQUEUING,))
            _, peak = server.memory_mb()
            server.stop_job(api, job.job_id)
    seconds = enqueued.elapsed_s
    items = int(enqueued.status.get("items_enqueued") or 0)
    if enqueued.status["status"] != "status_running" or items != lines:
        raise harness.JobFailed(
            f"enqueuing ended {enqueued.status['status']} with {items} of {lines} items:"
            f" {enqueued.status.get('message')}"
        )
    figures["submit_files_mb"] = total_bytes / 1e6
    figures["submit_files_s"] = seconds
    figures["submit_files_mb_s"] = total_bytes / 1e6 / seconds
    figures["submit_files_items_s"] = items / seconds
    figures["submit_files_rss_idle_mb"] = idle
    figures["submit_files_rss_mb"] = peak
    progress(
        f"submit files: enqueued {items} items in {seconds:.2f}s:"
        f" {total_bytes / 1e6 / seconds:.1f} MB/s, {items / seconds:.0f} items/s,"
        f" peak RSS {peak:.0f} MB (idle {idle:.0f} MB)"
    )


def write_json_lines(directory: Path, megabytes: int) -> tuple[int, int]:
    """Write about ``megabytes`` MB of JSON lines, ~100 bytes each, in files of 100 MB.

    Returns the bytes and lines written.
    """
    target = megabytes * 1_000_000
    per_file = FILE_CHUNK_MB * 1_000_000
    text = "y" * 70
    written = lines = 0
    part = 0
    while written < target:
        limit = min(target - written, per_file)
        with open(directory / f"part-{part:04d}.jsonl", "w", encoding="ascii") as f:
            size = 0
            while size < limit:
                block = "".join(
                    f'{{"id": {lines + n}, "text": "{text}", "n": {n}}}\n' for n in range(10_000)
                )
                f.write(block)
                size += len(block)
                lines += 10_000
        written += size
        part += 1
    return written, lines


# --- scale ---------------------------------------------------------------------------


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


# --- status ---------------------------------------------------------------------------


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


# --- main ---------------------------------------------------------------------------

SECTION_RUNNERS: dict[str, Callable[[Options, Results], None]] = {
    "dispatch": bench_dispatch,
    "efficiency": bench_efficiency,
    "submit": bench_submit,
    "scale": bench_scale,
    "status": bench_status,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (about 2 minutes)")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=SECTIONS,
        metavar="SECTION",
        help=f"run only these sections ({', '.join(SECTIONS)})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent / "results",
        help="where to write the report (default: benchmarks/results)",
    )
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray Data baseline")
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # for tests
    return parser.parse_args(argv)


def headline(figures: Figures) -> str:
    """Return every figure as ``key=value`` pairs, the headline keys first."""
    keys = list(HEADLINE_KEYS) + [k for k in figures if k not in HEADLINE_KEYS]
    return " ".join(f"{key}={report.format_value(figures.get(key))}" for key in keys)


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    """Turn SIGTERM into KeyboardInterrupt so that every orchestrator is stopped."""
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Run the chosen sections, write the report, and print the key=value line last."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started ignoring it
    mode = "quick" if args.quick or args.tiny else "full"
    sizes = TINY if args.tiny else QUICK if args.quick else FULL
    options = Options(sizes, use_ray=not args.no_ray)
    sections = args.only or list(SECTIONS)
    results = Results()
    started = time.perf_counter()
    progress(f"benchmarks ({mode}): {', '.join(sections)}; {report.machine_line()}")
    try:
        for name in sections:
            section_started = time.perf_counter()
            try:
                SECTION_RUNNERS[name](options, results)
            except Exception as e:  # report the section as failed and go on with the rest
                results.failed.append(name)
                progress(f"{name}: FAILED: {e}")
                traceback.print_exc()
            progress(f"{name}: done in {time.perf_counter() - section_started:.1f}s")
    except KeyboardInterrupt:
        progress("interrupted: every orchestrator and worker was stopped")
        return 130
    wall = time.perf_counter() - started
    results.figures["bench_wall_s"] = wall
    written = report.write(
        args.out,
        mode,
        results.figures,
        results.scale,
        {"sections": sections, "sizes": asdict(sizes), "failed": results.failed},
    )
    progress(f"wrote {', '.join(str(p) for p in written)} in {wall:.1f}s total")
    if results.failed:
        progress(f"failed sections: {', '.join(results.failed)}")
    print(headline(results.figures), flush=True)
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())
