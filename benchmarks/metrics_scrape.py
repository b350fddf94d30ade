"""How long ``GET /_cortex/metrics`` takes on a server holding 1,000 jobs.

Usage: python benchmarks/metrics_scrape.py [--jobs 1000] [--scrapes 50]

Writes a store in a temporary home with ``--jobs`` ended jobs (10 batches and 2 workers
each, statuses and counts varied, some workers with GPU samples), starts the real app on
it in this process (the token, the guard, the route, the store), scrapes it ``--scrapes``
times over HTTP (httpx through ASGI), and times the scrape function on its own as well.
Prints the figures and ends with one ``key=value`` line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from starlette.testclient import TestClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.http.app import create_app  # noqa: E402
from orchestrator.http.metrics import scrape  # noqa: E402
from orchestrator.settings import Settings  # noqa: E402
from orchestrator.store.engine import Store  # noqa: E402

STATUSES = ("status_succeeded", "status_completed_with_failures", "status_stopped")
GPU = {"index": 0, "uuid": "GPU-0", "utilization_pct": 50.0, "memory_used_bytes": 1 << 30}


def fill(db: Path, jobs: int) -> None:
    """Write ``jobs`` ended jobs with their batches and workers."""
    store = Store(db)
    with store.write() as conn:
        conn.exec_driver_sql(
            "INSERT INTO job (job_id, api_name, api_id, api_spec, project_dir, backend, status,"
            " workers, batch_size, config, source, total, queued, leased, succeeded, failed,"
            " created_time, retries, max_restarts, enqueued_items, time_sum, hook_state)"
            " VALUES (?, ?, 'a1', '{}', '/nowhere', 'process', ?, 2, 1, '{}', '{}', 10, 0, 0,"
            " ?, ?, ?, 0, 0, 10, 1.0, 'done')",
            [
                (f"job-{n:05d}", f"api-{n % 20}", STATUSES[n % 3], 10 - n % 3, n % 3, float(n))
                for n in range(jobs)
            ],
        )
        conn.exec_driver_sql(
            "INSERT INTO batch (job_id, idx, first_item, size, payload, state, attempts, errors)"
            " VALUES (?, ?, ?, 1, '[0]', 'succeeded', 1, 0)",
            [(f"job-{n:05d}", i, i) for n in range(jobs) for i in range(10)],
        )
        conn.exec_driver_sql(
            "INSERT INTO worker (worker_id, job_id, slot, state, handle, created_time, gpus)"
            " VALUES (?, ?, ?, ?, '{}', 0, ?)",
            [
                (f"job-{n:05d}-w{w}", f"job-{n:05d}", w, "running" if n < 10 else "succeeded",
                 json.dumps([GPU]) if n < 10 else None)
                for n in range(jobs)
                for w in range(2)
            ],
        )  # fmt: skip
    store.close()


def timed(call: object, times: int) -> list[float]:
    """Return the milliseconds of each of ``times`` calls."""
    assert callable(call)
    spent = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        spent.append(1000 * (time.perf_counter() - started))
    return spent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--scrapes", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cortex-metrics-") as home:
        settings = Settings(home=Path(home))
        settings.ensure_dirs()
        fill(settings.db_path, args.jobs)
        with TestClient(create_app(settings), base_url="http://127.0.0.1") as http:
            token = (Path(home) / "token").read_text().strip()
            http.headers["Authorization"] = f"Bearer {token}"
            text = http.get("/_cortex/metrics").raise_for_status().text
            over_http = timed(lambda: http.get("/_cortex/metrics").raise_for_status(), args.scrapes)
            ctx = http.app.state.ctx  # type: ignore[attr-defined]
            direct = timed(lambda: scrape(ctx), args.scrapes)
    lines = text.count("\n")
    print(f"{args.jobs} jobs, {args.jobs * 10} batches, {args.jobs * 2} workers")
    print(f"a scrape: {len(text.encode())} bytes, {lines} lines")
    for name, spent in (("over HTTP", over_http), ("scrape() alone", direct)):
        p95 = statistics.quantiles(spent, n=20)[-1]
        print(
            f"{name}: median {statistics.median(spent):.1f} ms, p95 {p95:.1f} ms,"
            f" max {max(spent):.1f} ms over {len(spent)} scrapes"
        )
    p50, p95 = statistics.median(over_http), statistics.quantiles(over_http, n=20)[-1]
    size = len(text.encode())
    print(
        f"metrics_scrape_jobs={args.jobs} metrics_scrape_p50_ms={p50:.1f}"
        f" metrics_scrape_p95_ms={p95:.1f} metrics_scrape_bytes={size}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
