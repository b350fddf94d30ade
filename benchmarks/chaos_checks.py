"""What benchmarks/chaos.py checks once the jobs ended: each job's status and counters
against the results stored, leftover workers, the server's error lines, and the report.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness
import httpx
from chaos_server import Server
from harness import progress

TERMINAL_WORKER_WAIT_S = 15.0  # after the jobs ended, for their workers to exit


@dataclass
class Done:
    """The kills done so far."""

    workers: int = 0
    orchestrator: int = 0
    restart_s: list[float] = field(default_factory=list)  # kill to healthy again

    @property
    def total(self) -> int:
        """Return how many kills were done."""
        return self.workers + self.orchestrator


@dataclass
class JobCheck:
    """What one job's final status and results say."""

    job_id: str
    batches: int  # as submitted
    status: str
    succeeded: int
    failed: int
    total: int
    lines: int  # result lines read back
    lost: int
    twice: int
    problems: list[str]

    @property
    def wrong(self) -> bool:
        """Return whether the job ended otherwise than it should have."""
        return bool(self.problems)


def check_job(server: Server, job_id: str, batches: int, status: dict[str, Any]) -> JobCheck:
    """Compare the job's final status and stored results with the batches it was given."""
    metrics = status["batch_metrics"]
    succeeded, failed, total = metrics["succeeded"], metrics["failed"], metrics["total"]
    problems = []
    try:
        lines = server.result_lines(job_id)
    except httpx.HTTPError as e:
        problems.append(f"results unreadable: {e}")
        lines = []
    per_batch = Counter(int(line["batch_index"]) for line in lines)
    missing = sum(1 for index in range(batches) if index not in per_batch)
    repeated = sum(n - 1 for n in per_batch.values() if n > 1)
    stray = sum(n for index, n in per_batch.items() if not 0 <= index < batches)
    if status["status"] != "status_succeeded":
        problems.append(f"ended {status['status']}: {status.get('message')}")
    if total != batches:
        problems.append(f"total {total}, submitted {batches}")
    if failed:
        problems.append(f"{failed} failed batches")
    if succeeded != len(per_batch):
        problems.append(f"succeeded {succeeded}, distinct batches with a result {len(per_batch)}")
    malformed = [line for line in lines if not _well_formed(line)]
    if malformed:
        problems.append(f"{len(malformed)} malformed result lines, e.g. {malformed[0]}")
    if stray:
        problems.append(f"{stray} result lines for batch indexes outside 0..{batches - 1}")
    return JobCheck(
        job_id,
        batches,
        str(status["status"]),
        succeeded,
        failed,
        total,
        len(lines),
        lost=max(missing, batches - (succeeded + failed), 0),
        twice=max(repeated + stray, succeeded + failed - batches, 0),
        problems=problems,
    )


def _well_formed(line: dict[str, Any]) -> bool:
    """Return whether a result line is one batch's ``[t_start, t_end]``, keyed by its item."""
    result = line.get("result")
    return (
        line.get("batch_result") is True
        and line.get("item_index") == line.get("batch_index")
        and isinstance(result, list)
        and len(result) == 2
        and all(isinstance(t, float | int) for t in result)
        and result[0] <= result[1]
    )


def workers_remaining(url: str, timeout_s: float) -> int:
    """Wait up to ``timeout_s`` for the workers of ``url`` to exit; return how many are left."""
    deadline = time.monotonic() + timeout_s
    while (left := len(harness.worker_pids(url))) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def log_problems(log_path: Path, limit: int = 40) -> list[str]:
    """Return the orchestrator log's last error lines and tracebacks (and our start marks)."""
    keep = ("ERROR", "Traceback", "Error:", "=== chaos")
    lines = log_path.read_text(errors="replace").splitlines()
    return [line for line in lines if any(k in line for k in keep)][-limit:]


def tail(path: Path, lines: int) -> list[str]:
    """Return the last lines of a file (none if it cannot be read)."""
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def report(
    checks: list[JobCheck], done: Done, wall_s: float, workers_left: int, status_errors: int
) -> str:
    """Print the per-job table and the figures; return the machine-readable line."""
    progress(
        f"{'job':<34} {'status':<26} {'batches':>8} {'total':>8} {'ok':>8} {'failed':>6}"
        f" {'lines':>8} {'lost':>5} {'twice':>5}"
    )
    for c in checks:
        progress(
            f"{c.job_id:<34} {c.status:<26} {c.batches:>8} {c.total:>8} {c.succeeded:>8}"
            f" {c.failed:>6} {c.lines:>8} {c.lost:>5} {c.twice:>5}"
        )
        for problem in c.problems:
            progress(f"  WRONG: {problem}")
    lost = sum(c.lost for c in checks)
    twice = sum(c.twice for c in checks)
    wrong = sum(c.wrong for c in checks)
    restart = (
        f"{harness.percentile(done.restart_s, 50):.1f} / {max(done.restart_s):.1f} s"
        if done.restart_s
        else "-"
    )
    rows = [
        ("batches", f"{sum(c.batches for c in checks):,} in {len(checks)} jobs"),
        ("batches lost", str(lost)),
        ("batches counted twice", str(twice)),
        ("wrong-status jobs", str(wrong)),
        ("kills (workers + orchestrator)", f"{done.total} ({done.workers} + {done.orchestrator})"),
        ("orchestrator kill to healthy, p50 / max", restart),
        ("workers left after the jobs ended", str(workers_left)),
        ("status requests answered with an error", str(status_errors)),
        ("wall time, submit to every job ended", f"{wall_s:.1f} s"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        progress(f"{name:<{width}}  {value}")
    return (
        f"batches_lost={lost} batches_counted_twice={twice} wrong_status_jobs={wrong}"
        f" kills={done.total} orchestrator_kills={done.orchestrator} wall_s={wall_s:.1f}"
    )
