"""Sections that time realistic work: efficiency against the peers, and submitting sources.

efficiency
    A 20 ms predictor on 4 workers against the ideal ``batches * 0.020 / 4``, and the same
    predictor through ``multiprocessing.Pool(4)`` and Ray Data (see ``baselines.py``).
submit
    A 10 MB ``item_list`` (HTTP response time, enqueue time) and a 1 GB (quick: 100 MB)
    ``delimited_files`` source (enqueue MB/s, items/s, orchestrator peak RSS).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import baselines
import harness
import report
from harness import progress
from plan import Figures, Options, Results, Sizes

SLEEP_S = 0.020
EFFICIENCY_WORKERS = 4
ITEM_CHARS = 96  # 100k items make a body of 10.0 MB, under the 10 MiB limit
FILE_BATCH_SIZE = 100
FILE_CHUNK_MB = 100


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
    ours_steady = baselines.steady_window(stamps)
    ours = _record_system(figures, "ours", ideal, finished.elapsed_s, ours_steady)
    figures["eff_ours_startup_s"] = min(start for start, _ in stamps) - finished.submitted
    figures["eff_ours_tail_s"] = finished.seen - max(end for _, end in stamps)
    progress(
        f"efficiency ours: submit->first predict {figures['eff_ours_startup_s']:.2f}s,"
        f" last predict->seen succeeded {figures['eff_ours_tail_s']:.2f}s"
    )

    batches = [[index] for index in range(count)]
    pool = baselines.run_pool(batches, config)
    figures["efficiency_vs_pool"] = ours / _record_system(
        figures, "pool", ideal, pool.wall_s, pool.steady_s
    )

    if not options.use_ray:
        progress("efficiency ray: skipped (--no-ray)")
    elif baselines.ray_version() is None:
        progress("efficiency ray: skipped: ray is not importable (pip install 'ray[data]')")
    else:
        ray = baselines.run_ray(batches, config)
        figures["efficiency_vs_ray"] = ours / _record_system(
            figures, "ray", ideal, ray.wall_s, ray.steady_s
        )
        figures["steady_vs_ray"] = ray.steady_s / ours_steady
    progress(
        "efficiency: "
        + ", ".join(
            f"{key}={report.format_value(figures.get(key))}"
            for key in ("efficiency_vs_pool", "efficiency_vs_ray", "steady_vs_ray")
        )
    )


def _record_system(figures: Figures, name: str, ideal: float, wall: float, steady: float) -> float:
    """Record and print one system's times and efficiencies; return ideal / wall."""
    figures[f"eff_{name}_wall_s"] = wall
    figures[f"eff_{name}_steady_s"] = steady
    figures[f"efficiency_{name}"] = ideal / wall
    figures[f"efficiency_{name}_steady"] = ideal / steady
    progress(
        f"efficiency {name}: wall {wall:.2f}s (efficiency {ideal / wall:.3f}),"
        f" steady {steady:.2f}s (efficiency {ideal / steady:.3f}), ideal {ideal:.2f}s"
    )
    return ideal / wall


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
        # The generated files are outside the bench API's project: open their folder to jobs.
        with harness.orchestrator(settings=[f"source_roots={tmp}"]) as server:
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
