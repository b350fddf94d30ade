"""AWS backend: SQS requests and bytes per batch, predict -> counted, submit -> first predict.

Usage:
    python benchmarks/aws_backend.py [--batches 300] [--workers 1 2]    # on moto
    python benchmarks/aws_backend.py --real --yes-spend-money            # on your AWS

By default it runs on a moto server of its own (moto runs each AWS Batch job as a container
on the local Docker engine, on the host network; it needs the engine and the offline base
image): the request counts are the product's, but the timings are moto's, not AWS's (moto's
SQS slows as a queue deepens; its Batch starts a local container in seconds, where Fargate
first provisions a task). ``--real`` runs the same steps on the AWS account and region of
the environment's credentials, creating and deleting a temporary home's resources
(``cortex-tui aws setup`` and ``teardown --force``; API image in ECR; workers on Fargate,
0.25 vCPU each). It was written without access to AWS and has not been run there.

Steps (the site is ``aws_site.py``): a temporary home; ``cortex-tui aws setup``; an
orchestrator with ``--backend aws``; deploy ``benchmarks/apis/aws_bench`` (a no-op predictor
that returns ``time.time()``); for each ``--workers`` count, a job of ``--batches`` one-item
batches, waited on until its workers have exited and its queues are deleted; then the
orchestrator stops, the home is torn down, the moto server stops, and the home's containers
and the image this run built are removed.

Measured, per job:

- SQS requests and bytes per batch: every SQS request on the job's two queues, the
  orchestrator's and its workers', from creating the queues to deleting them (idle polls
  included), divided by the batches; by operation and side. They are counted by a botocore
  hook (``benchmarks/apis/aws_bench/aws_requests.py``) that botocore's plugin variable loads
  into every client of the orchestrator and of the workers, so it works on AWS too: a
  worker prints its counts as it exits (its log, copied from CloudWatch, keeps them), the
  orchestrator appends a line per request to a file beside its home. On moto the totals are
  checked against moto's request recorder, which sees every request it serves. Bytes are
  the request bodies sent (SQS bills one request per 64 KiB). S3 requests are shown apart.
- predict -> counted: per batch, from ``time.time()`` in its ``predict`` (a no-op batch
  runs within a millisecond of its lease arriving, so this is lease -> counted) to its
  ``finished_time`` in the store (the ack's transaction): the worker holding its acks until
  its next exchange, the event on SQS, the orchestrator's drain, the write. With ``--real``
  these are two machines' wall clocks (NTP keeps them within milliseconds).
- submit -> first predict, submit -> first counted: from just before ``POST /aws-bench``;
  and first -> last counted, per batch after the first (``docker_backend.py``'s figure).

Prints one line per measurement and a key=value summary. ``--keep`` keeps the temporary
home, logs and counts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aws_site import API_DIR, ORCHESTRATOR_COUNTS, Orchestrator, Site

API = "aws-bench"
#: What starts a line of counts (``aws_requests.PREFIX``).
COUNTS_PREFIX = "cortex-bench-aws-requests "
#: The issue's target: SQS requests per no-op batch.
TARGET = 0.5
LIVE = ("pending", "initializing", "running")


@dataclass
class Tally:
    """Requests by operation: ``{operation: [requests, bytes, empty receives]}``."""

    ops: dict[str, list[int]] = field(default_factory=dict)

    def add(self, lines: Iterable[str], job_id: str, service: str) -> None:
        """Add the counts lines' rows of ``service`` that name the job."""
        for line in lines:
            if COUNTS_PREFIX not in line:  # a worker's lines start with a time and its name
                continue
            for row in json.loads(line.split(COUNTS_PREFIX, 1)[1])["counts"]:
                if row["service"] == service and job_id in row["target"]:
                    counts = self.ops.setdefault(row["operation"], [0, 0, 0])
                    for i, key in enumerate(("requests", "bytes", "empty")):
                        counts[i] += row[key]

    def total(self, column: int = 0) -> int:
        return sum(counts[column] for counts in self.ops.values())


@dataclass
class Run:
    """One job: when it was submitted and its batches' (predict, counted) times."""

    workers: int
    job_id: str
    submitted: float
    succeeded: float
    stamps: list[tuple[float, float]]


def run_job(orch: Orchestrator, workers: int, batches: int, timeout_s: float) -> Run:
    """Submit a job of no-op batches; wait until it succeeded and its workers are gone."""
    body = {"workers": workers, "item_list": {"items": list(range(batches)), "batch_size": 1}}
    submitted = time.time()
    answer = orch.http.post(f"/{API}", json=body)
    answer.raise_for_status()
    job_id = answer.json()["job_id"]
    deadline = time.monotonic() + timeout_s
    while (status := orch.http.get(f"/{API}/{job_id}").json()["job_status"])["status"] in (
        "status_enqueuing",
        "status_running",
    ):
        if time.monotonic() > deadline:
            raise SystemExit(f"job {job_id} still {status['status']} after {timeout_s:.0f}s")
        time.sleep(0.1)
    succeeded = time.time()
    if status["status"] != "status_succeeded":
        raise SystemExit(f"job {job_id} ended {status['status']}: {status.get('message')}")
    wait_until_closed(orch, job_id, deadline)
    return Run(workers, job_id, submitted, succeeded, read_stamps(orch.home, job_id))


def wait_until_closed(orch: Orchestrator, job_id: str, deadline: float) -> None:
    """Wait until no worker of the job lives, its queues are gone and each worker's log
    holds its counts."""
    logs = orch.home / "logs" / job_id
    while True:
        stats = orch.http.get(f"/{API}/{job_id}").json()["job_status"]["worker_stats"]
        names = orch.http.get(f"/_cortex/apis/{API}/jobs/{job_id}/workers").json()["workers"]
        counted = [w for w in names if COUNTS_PREFIX in _read(logs / f"{w['worker']}.log")]
        if not any(stats.get(state) for state in LIVE) and len(counted) == len(names):
            with _store(orch.home) as db:
                row = db.execute("SELECT closed FROM remote_queues WHERE job_id = ?", (job_id,))
                if row.fetchone() == (1,):
                    return
        if time.monotonic() > deadline:
            missing = sorted({w["worker"] for w in names} - {w["worker"] for w in counted})
            raise SystemExit(f"job {job_id}: workers, queues or counts left (no counts: {missing})")
        time.sleep(0.5)


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


@contextlib.contextmanager
def _store(home: Path) -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(f"file:{home / 'cortex.db'}?mode=ro", uri=True, timeout=30)
    try:
        yield db
    finally:
        db.close()


def read_stamps(home: Path, job_id: str) -> list[tuple[float, float]]:
    """Return each batch's (predict time on the worker, time the orchestrator counted it)."""
    with _store(home) as db:
        rows = db.execute(
            "SELECT result, finished_time FROM batch WHERE job_id = ? AND state = 'succeeded'",
            (job_id,),
        ).fetchall()
    return sorted((float(json.loads(result)), float(counted)) for result, counted in rows)


def tallies(home: Path, job_id: str, service: str) -> tuple[Tally, Tally]:
    """Return the job's requests of ``service``: its workers', its orchestrator's."""
    workers, orchestrator = Tally(), Tally()
    for path in sorted((home / "logs" / job_id).glob("w*.log")):
        workers.add(_read(path).splitlines(), job_id, service)
    orchestrator.add(_read(home.parent / ORCHESTRATOR_COUNTS).splitlines(), job_id, service)
    return workers, orchestrator


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _tag(workers: int) -> str:
    return f"aws {workers} worker{'s' if workers > 1 else ' '}"


def report_latency(run: Run, summary: dict[str, float]) -> None:
    """Print the job's start-up and predict -> counted figures."""
    tag, w = _tag(run.workers), f"{run.workers}w"
    first_predict, first_counted = run.stamps[0][0], min(c for _, c in run.stamps)
    last_counted = max(c for _, c in run.stamps)
    per_batch_ms = (last_counted - first_counted) / (len(run.stamps) - 1) * 1000
    print(
        f"{tag}: {len(run.stamps)} batches; submit -> first predict"
        f" {first_predict - run.submitted:.2f}s, -> first counted"
        f" {first_counted - run.submitted:.2f}s, -> succeeded {run.succeeded - run.submitted:.2f}s;"
        f" first -> last counted {last_counted - first_counted:.2f}s ({per_batch_ms:.1f} ms/batch)"
    )
    lags = [(counted - predicted) * 1000 for predicted, counted in run.stamps]
    print(
        f"{tag}: predict -> counted p50 {pct(lags, 0.5):.0f} ms, p90 {pct(lags, 0.9):.0f} ms,"
        f" max {max(lags):.0f} ms"
    )
    summary[f"submit_to_first_predict_s_{w}"] = first_predict - run.submitted
    summary[f"submit_to_first_counted_s_{w}"] = first_counted - run.submitted
    summary[f"per_batch_ms_{w}"] = per_batch_ms
    summary[f"predict_to_counted_p50_ms_{w}"] = pct(lags, 0.5)
    summary[f"predict_to_counted_p90_ms_{w}"] = pct(lags, 0.9)


def report_requests(run: Run, site: Site, summary: dict[str, float]) -> None:
    """Print the job's SQS requests and bytes per batch, by operation and side."""
    tag, w, batches = _tag(run.workers), f"{run.workers}w", len(run.stamps)
    workers, orch = tallies(site.home, run.job_id, "sqs")
    total, sent = workers.total() + orch.total(), workers.total(1) + orch.total(1)
    met = "met" if total / batches <= TARGET else "MISSED"
    print(
        f"{tag}: SQS {total / batches:.3f} requests/batch ({total}: workers {workers.total()},"
        f" orchestrator {orch.total()}), {sent / batches:.0f} bytes/batch sent;"
        f" target <= {TARGET}: {met}"
    )
    for op in sorted(set(workers.ops) | set(orch.ops), key=lambda o: -_requests(o, workers, orch)):
        wk, oc = workers.ops.get(op, [0, 0, 0]), orch.ops.get(op, [0, 0, 0])
        empty = (f", {wk[2]} empty", f", {oc[2]} empty") if op == "ReceiveMessage" else ("", "")
        print(
            f"{tag}:   {op:28} {(wk[0] + oc[0]) / batches:.3f}/batch (workers {wk[0]}{empty[0]};"
            f" orchestrator {oc[0]}{empty[1]}; {(wk[1] + oc[1]) // batches} B/batch)"
        )
    s3 = tallies(site.home, run.job_id, "s3")
    ops = ", ".join(f"{op} {_requests(op, *s3)}" for op in sorted(s3[0].ops | s3[1].ops))
    print(f"{tag}: S3 {(s3[0].total() + s3[1].total()) / batches:.3f} requests/batch ({ops})")
    if site.moto is not None:
        seen = site.moto.sqs_requests(run.job_id)
        agree = "agree" if seen == total else f"DISAGREE by {seen - total}"
        print(f"{tag}: moto's recorder served {seen} SQS requests on the job's queues: {agree}")
    summary[f"sqs_requests_per_batch_{w}"] = total / batches
    summary[f"sqs_bytes_per_batch_{w}"] = sent / batches


def _requests(op: str, *tallies: Tally) -> int:
    return sum(t.ops.get(op, [0])[0] for t in tallies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--timeout", type=float, default=900, help="seconds per job")
    parser.add_argument("--real", action="store_true", help="run on AWS, not on moto")
    parser.add_argument("--yes-spend-money", action="store_true", help="confirm --real")
    parser.add_argument("--keep", action="store_true", help="keep the temporary home and logs")
    args = parser.parse_args()
    if args.real and not args.yes_spend_money:
        parser.error(
            "--real creates AWS resources (S3 bucket, ECR repository, IAM roles, Batch compute"
            " environment and queue, SQS queues), runs Fargate workers and deletes it all"
            " again; it costs money. Add --yes-spend-money to go ahead."
        )
    summary: dict[str, float] = {}
    site = Site(real=args.real)
    try:
        measure(args, site, summary)
    finally:
        site.close(keep=args.keep)
    print(" ".join(f"{key}={value:.3f}" for key, value in summary.items()))


def measure(args: argparse.Namespace, site: Site, summary: dict[str, float]) -> None:
    """Set up the home's AWS resources, run the jobs, tear it all down, report."""
    site.start()
    orch = site.orchestrator()
    runs: list[Run] = []
    try:
        started = time.perf_counter()
        site.aws("setup")
        print(f"aws setup {time.perf_counter() - started:.1f}s")
        orch.start()
        started = time.perf_counter()
        answer = orch.http.post("/_cortex/apis", json={"project_dir": str(API_DIR)})
        if answer.status_code != 200:
            raise SystemExit(f"deploying {API_DIR} failed: {answer.text}")
        deployed = answer.json()["apis"][0]
        if deployed.get("image_built"):
            site.images.append(deployed["image"])
        print(f"deploy {API} (image, job definition) {time.perf_counter() - started:.1f}s")
        for workers in args.workers:
            runs.append(run_job(orch, workers, args.batches, args.timeout))
            report_latency(runs[-1], summary)
    except (Exception, SystemExit):
        print(orch.output_tail(), end="", file=sys.stderr)
        raise
    finally:
        orch.stop()
        site.tear_down()
    for run in runs:
        report_requests(run, site, summary)


if __name__ == "__main__":
    main()
