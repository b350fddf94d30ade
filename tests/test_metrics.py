"""``GET /_cortex/metrics``: the Prometheus text a scraper reads, parsed with
``prometheus_client``'s own parser, against what the job's status says.

The scrape's timing on 1,000 jobs is in ``benchmarks/metrics_scrape.py``.
"""

from __future__ import annotations

import math
from pathlib import Path

import httpx
import pytest
from conftest import InProcessServer, Server, items_job
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event

from orchestrator.auth import Credentials
from orchestrator.context import Context
from orchestrator.http.metrics import scrape
from orchestrator.metrics import Exposition, Histogram
from orchestrator.settings import Settings
from orchestrator.store.engine import Store

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> tuple[dict[str, str], Samples]:
    """Return each family's type and every sample, keyed by name and labels."""
    kinds, samples = {}, {}
    for family in text_string_to_metric_families(text):
        kinds[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return kinds, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_the_scrape_parses_and_its_counters_match_the_jobs_status(
    server: Server, testbench: str
) -> None:
    body = items_job(list(range(10)), batch_size=2, workers=2, config={"fail_items": [5]})
    job_id = server.submit(testbench, body)["job_id"]
    status = server.wait(testbench, job_id)
    assert status["status"] == "status_completed_with_failures"
    scraped = server.http.get("/_cortex/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
    kinds, samples = parse(scraped.text)

    job = {"api": testbench, "job": job_id}
    metrics = status["batch_metrics"]
    assert value(samples, "cortex_tui_batches_succeeded_total", **job) == metrics["succeeded"] == 4
    assert value(samples, "cortex_tui_batches_failed_total", **job) == metrics["failed"] == 1
    assert value(samples, "cortex_tui_batches_enqueued_total", **job) == metrics["total"] == 5
    # The queue gauges are those of jobs in progress: an ended job waits for nothing.
    for gauge in ("cortex_tui_batches_in_flight", "cortex_tui_batches_queued"):
        assert (gauge, frozenset(job.items())) not in samples, gauge
    assert value(samples, "cortex_tui_jobs", status="status_completed_with_failures") == 1
    assert value(samples, "cortex_tui_jobs", status="status_running") == 0
    workers = sum(v for (name, _), v in samples.items() if name == "cortex_tui_workers")
    assert workers == len(server.workers(testbench, job_id)) == 2
    # Every predict call was observed once, by outcome, with its predict time and its
    # lease-to-ack latency: 4 successes, and each attempt of the failing batch.
    calls = {"succeeded": 4, "failed": 1 + status["retries"]}
    for histogram in ("cortex_tui_batch_predict_seconds", "cortex_tui_batch_lease_to_ack_seconds"):
        assert kinds[histogram] == "histogram"
        for outcome, count in calls.items():
            assert value(samples, f"{histogram}_count", outcome=outcome) == count
            assert value(samples, f"{histogram}_bucket", outcome=outcome, le="+Inf") == count
            assert value(samples, f"{histogram}_sum", outcome=outcome) > 0
    assert kinds["cortex_tui_batches_succeeded"] == "counter"  # the parser drops "_total"
    assert value(samples, "cortex_tui_orchestrator_resident_memory_bytes") > 10 << 20
    assert value(samples, "cortex_tui_http_requests_in_flight") >= 1


def test_a_running_jobs_queue_gauges_match_its_status(server: Server, testbench: str) -> None:
    body = items_job(list(range(20)), batch_size=1, workers=1, config={"sleep_s": 0.5})
    job_id = server.submit(testbench, body)["job_id"]
    server.wait_for(testbench, job_id, lambda s: s["batch_metrics"]["succeeded"] >= 1)

    _, samples = parse(server.http.get("/_cortex/metrics").text)
    status = server.status(testbench, job_id)
    server.http.delete(f"/{testbench}/{job_id}")

    job = {"api": testbench, "job": job_id}
    queued = value(samples, "cortex_tui_batches_queued", **job)
    in_flight = value(samples, "cortex_tui_batches_in_flight", **job)
    done = value(samples, "cortex_tui_batches_succeeded_total", **job)
    # Read a moment apart: the three add up to the job's total either way.
    assert queued + in_flight + done == status["batch_metrics"]["total"] == 20
    assert queued >= status["batches_in_queue"]


def test_the_scrape_needs_the_token(server: Server) -> None:
    answer = httpx.get(f"{server.url}/_cortex/metrics")
    assert answer.status_code == 401
    assert "token" in answer.json()["error"]


def test_a_scrape_reads_the_job_and_worker_tables_never_the_batches(tmp_path: Path) -> None:
    """However many batches the jobs have, a scrape costs a pass over the job rows."""
    with InProcessServer(tmp_path / "home") as srv:
        assert srv.http.get("/_cortex/metrics").status_code == 200
    store = Store(tmp_path / "home" / "cortex.db")
    seen: list[str] = []
    store.engine.dispose()  # new connections from here on carry the trace
    event.listen(store.engine, "connect", lambda dbapi, _: dbapi.set_trace_callback(seen.append))
    settings = Settings(home=tmp_path / "home")
    ctx = Context(settings=settings, store=store, credentials=Credentials(settings.home))
    scrape(ctx)
    store.close()
    statements = [sql for sql in seen if sql.lstrip().upper().startswith("SELECT")]
    assert len(statements) == 3, statements
    assert not [sql for sql in statements if " batch" in sql], statements


def test_histogram_buckets_are_cumulative_and_bounds_inclusive() -> None:
    histogram = Histogram((0.1, 1.0))
    for observed in (0.05, 0.1, 0.5, 1.0, 7.0):
        histogram.observe(observed)
    buckets, total, count = histogram.read()
    assert buckets == [(0.1, 2), (1.0, 4), (math.inf, 5)]
    assert (total, count) == (pytest.approx(8.65), 5)


def test_label_values_are_escaped_so_they_parse_back() -> None:
    awkward = 'a "quoted"\\ name\nwith a newline'
    out = Exposition()
    out.family("x_total", "counter", "help\nover two lines", [({"api": awkward}, 3)])
    out.family("y", "gauge", "a float", [({}, 0.25)])
    _, samples = parse(out.text())
    assert value(samples, "x_total", api=awkward) == 3
    assert value(samples, "y") == 0.25
