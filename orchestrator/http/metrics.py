"""``GET /_cortex/metrics``: the orchestrator in the Prometheus text format, and the count
of requests in flight it reports.

Counts come from the store at each scrape (three statements, none on ``batch``), so they
match ``GET /<api>/<job_id>`` exactly; the latency histograms and the requests in flight
are this process's own (``orchestrator.metrics.Telemetry``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from orchestrator.context import Context
from orchestrator.http.deps import context
from orchestrator.http.guard import App, Receive, Scope, Send
from orchestrator.http.openapi import COMMON_ERRORS, text_answer
from orchestrator.jobs.worker_records import short_name
from orchestrator.metrics import (
    CONTENT_TYPE,
    Exposition,
    Sample,
    Telemetry,
    label_text,
    resident_memory_bytes,
)
from orchestrator.status import JobStatus, WorkerState
from orchestrator.store import metrics_queries
from orchestrator.store.metrics_queries import JobCounters

router = APIRouter(prefix="/_cortex", tags=["management"], responses=COMMON_ERRORS)
Ctx = Annotated[Context, Depends(context)]
PREFIX = "cortex_tui_"


@router.get(
    "/metrics",
    response_class=Response,
    responses=text_answer("text/plain", "The Prometheus text exposition format, version 0.0.4"),
)
async def metrics(ctx: Ctx) -> Response:
    """Return the orchestrator's metrics in the Prometheus text format."""
    text = await run_in_threadpool(scrape, ctx)
    return Response(text, media_type=CONTENT_TYPE)


class RequestsInFlight:
    """Counts the HTTP requests being answered (a log that follows counts until it ends)."""

    def __init__(self, app: App, telemetry: Telemetry) -> None:
        self.app, self.telemetry = app, telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.telemetry.requests_in_flight += 1  # one event loop: no lock needed
        try:
            await self.app(scope, receive, send)
        finally:
            self.telemetry.requests_in_flight -= 1


def scrape(ctx: Context) -> str:
    """Return the text of one scrape."""
    with ctx.store.read() as conn:
        jobs = metrics_queries.job_counters(conn)
        workers = metrics_queries.workers_by_state(conn)
        gpus = metrics_queries.live_gpu_samples(conn)
    out = Exposition()
    _job_families(out, jobs)
    out.family(
        f"{PREFIX}workers",
        "gauge",
        "Worker records by state, over every job",
        (({"state": s.value}, workers.get(s.value, 0)) for s in WorkerState),
    )
    _gpu_families(out, gpus)
    telemetry = ctx.telemetry
    out.histogram(
        f"{PREFIX}batch_lease_to_ack_seconds",
        "Seconds from a batch's lease to the ack of its predict call, by outcome (since this"
        " server started)",
        (({"outcome": o}, h) for o, h in telemetry.lease_to_ack.items()),
    )
    out.histogram(
        f"{PREFIX}batch_predict_seconds",
        "Seconds a predict call on a batch took, as its worker measured them, by outcome"
        " (every attempt: a failed one that is retried counts too)",
        (({"outcome": o}, h) for o, h in telemetry.predict.items()),
    )
    out.family(
        f"{PREFIX}orchestrator_resident_memory_bytes",
        "gauge",
        "Resident memory of the orchestrator process",
        [({}, resident_memory_bytes())],
    )
    out.family(
        f"{PREFIX}http_requests_in_flight",
        "gauge",
        "HTTP requests the orchestrator is answering, this scrape included",
        [({}, telemetry.requests_in_flight)],
    )
    return out.text()


#: Per job: (metric name, kind, help, the counter of the job row it reads). The gauges are
#: those of jobs in progress only: an ended job's unrun batches wait for nothing.
_PER_JOB = (
    ("batches_enqueued_total", "counter", "Batches enqueued (the job's total)", "total"),
    ("batches_succeeded_total", "counter", "Batches that succeeded", "succeeded"),
    ("batches_failed_total", "counter", "Batches that failed after their retries", "failed"),
    ("batches_in_flight", "gauge", "Batches leased to a worker now (jobs in progress)", "leased"),
    ("batches_queued", "gauge", "Batches waiting in a job's queue (jobs in progress)", "queued"),
)


def _job_families(out: Exposition, jobs: list[JobCounters]) -> None:
    """Write jobs by status, then each job's batch counters (labelled api and job)."""
    by_status = dict.fromkeys((s.value for s in JobStatus), 0)
    for job in jobs:
        by_status[job.status] = by_status.get(job.status, 0) + 1
    out.family(
        f"{PREFIX}jobs",
        "gauge",
        "Jobs by status",
        (({"status": status}, count) for status, count in by_status.items()),
    )
    labels = [label_text({"api": job.api_name, "job": job.job_id}) for job in jobs]
    running = [not JobStatus(job.status).is_terminal for job in jobs]
    for name, kind, help_text, column in _PER_JOB:
        samples = [
            (label, getattr(job, column))
            for label, job, live in zip(labels, jobs, running, strict=True)
            if kind == "counter" or live
        ]
        out.family_of_labelled(f"{PREFIX}{name}", kind, help_text, samples)


def _gpu_families(out: Exposition, workers: list[metrics_queries.WorkerGpus]) -> None:
    """Write the latest GPU samples of each live worker, per device."""
    rows: list[tuple[dict[str, str], dict[str, object]]] = [
        (
            {
                "api": w.api_name,
                "job": w.job_id,
                "worker": short_name(w.worker_id),
                "gpu": str(sample.get("index", "")),
                "uuid": str(sample.get("uuid", "")),
            },
            sample,
        )
        for w in workers
        for sample in w.samples
    ]
    for name, help_text, key, scale in (
        ("worker_gpu_utilization_ratio", "GPU utilisation (0 to 1)", "utilization_pct", 0.01),
        ("worker_gpu_memory_used_bytes", "GPU memory in use", "memory_used_bytes", 1),
        ("worker_gpu_memory_total_bytes", "GPU memory in all", "memory_total_bytes", 1),
    ):
        samples: list[Sample] = [
            (labels, value * scale if scale != 1 else value)
            for labels, sample in rows
            if isinstance(value := sample.get(key), int | float)  # a device may not say
        ]
        out.family(f"{PREFIX}{name}", "gauge", f"{help_text}, per worker and device", samples)
