"""Chaos: ``kill -9`` workers and the orchestrator itself, many times, mid-job; nothing may be lost.

What: a real orchestrator (``python -m orchestrator``, temporary home, loopback port) runs
``--jobs`` ``benchmarks/apis/bench`` jobs (by default 4 of 2 workers: 8 live workers, the
default cap on 2 cores) of one-item batches, ``--batches`` in all, while a seeded schedule
SIGKILLs ``--kills`` processes: random workers (``python -m runtime``), and the
orchestrator, which is restarted at once on the same home and port (its workers outlive
it, reconnect, and are adopted again). Once every job has ended it checks, per job, the
final status, the status counters and every stored result line, and prints:

- batches lost: batches of a job with no result line, or missing from ``succeeded + failed``;
- batches counted twice: ``succeeded + failed`` over the batches submitted, or a batch with
  more than one result line;
- wrong-status jobs: a job not ``status_succeeded``, or whose counters (``total``,
  ``succeeded``, ``failed``) disagree with what it was given and with the results it stored;
- the kills done (workers, orchestrator) and the wall time.

How: the schedule is drawn from ``random.Random(--seed)`` before anything starts: for each
kill, its target (about 40 % are the orchestrator, shuffled among the workers), the point of
the run it lands at (a fraction of all batches acknowledged, between 2 % and 75 %), a short
delay after that point (0-0.3 s, so kills land in every phase of a worker's lease/ack loop),
and which of the live workers it picks. Waiting for progress rather than for wall time puts
the same seed's kills at the same points of the jobs on any machine and under any load.
Each result is one line per batch (``predict`` returns ``[t_start, t_end]``, not a list as
long as its one-item batch), keyed by its first item, so ``item_index == batch_index``.

Settings make recovery fast: ``visibility_timeout_s=3``, ``heartbeat_interval_s=1``,
``tick_s=0.2``, ``stop_grace_s=3``. Every request sends ``Authorization: Bearer <token>``
once the orchestrator has written ``HOME/token``. On any exit (success, failure, Ctrl-C,
SIGTERM) the orchestrator and every worker are killed and the temporary home is removed
(``--keep`` keeps it, with the orchestrator's log, for a look afterwards).

Run: python benchmarks/chaos.py [--seed 20261127] [--kills 30] [--batches 10000] [--quick]
The last line is machine-readable (``batches_lost=… batches_counted_twice=…
wrong_status_jobs=… kills=… orchestrator_kills=… wall_s=…``); the exit status is 1 when
any of the first three is not zero, 2 when fewer kills than asked could be done.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import harness
import httpx
from chaos_checks import (
    TERMINAL_WORKER_WAIT_S,
    Done,
    check_job,
    log_problems,
    report,
    tail,
    workers_remaining,
)
from chaos_server import API, HttpError, Server, Stuck, Watcher, clock
from harness import BENCH_API, progress

DEFAULT_SEED = 20261127
ORCHESTRATOR_SHARE = 0.4  # of the kills; the rest are workers
KILL_FROM, KILL_UNTIL = 0.02, 0.75  # kills land between these fractions of all batches done
MAX_DELAY_S = 0.3  # after its point is reached, a kill waits a seeded 0..this
WORKER_WAIT_S = 15.0  # how long a worker kill waits for a live worker to pick
END_TIMEOUT_S = 300.0  # after the last kill, for every job to end


@dataclass(frozen=True)
class Plan:
    """The sizes of one run."""

    seed: int
    kills: int
    batches: int
    jobs: int
    workers: int  # per job
    sleep_s: float  # per batch


@dataclass(frozen=True)
class Kill:
    """One scheduled kill."""

    target: str  # "worker" or "orchestrator"
    at: float  # the fraction of all batches done when it lands
    delay_s: float  # then this long
    pick: float  # which live worker: pids sorted, index int(pick * count)


def schedule(plan: Plan) -> list[Kill]:
    """Draw the seeded kill schedule, ordered by the point of the run each lands at."""
    rng = random.Random(plan.seed)
    orchestrator_kills = math.ceil(plan.kills * ORCHESTRATOR_SHARE)
    targets = ["orchestrator"] * orchestrator_kills + ["worker"] * (plan.kills - orchestrator_kills)
    rng.shuffle(targets)
    points = sorted(rng.uniform(KILL_FROM, KILL_UNTIL) for _ in targets)
    return [
        Kill(target, at, rng.uniform(0, MAX_DELAY_S), rng.random())
        for target, at in zip(targets, points, strict=True)
    ]


def job_sizes(plan: Plan) -> list[int]:
    """Split the batches over the jobs, the first jobs taking the remainder."""
    share, extra = divmod(plan.batches, plan.jobs)
    return [share + (1 if j < extra else 0) for j in range(plan.jobs)]


def submit_jobs(server: Server, plan: Plan) -> dict[str, int]:
    """Submit the jobs (unique integer items, one per batch); return batches by job id."""
    jobs: dict[str, int] = {}
    first = 0
    for size in job_sizes(plan):
        body = {
            "workers": plan.workers,
            "item_list": {"items": list(range(first, first + size)), "batch_size": 1},
            "config": {"sleep_s": plan.sleep_s, "stamp": True},
            "retries": 0,
            "max_worker_restarts": 1000,
        }
        answer = server.request("POST", f"/{API}", body)
        jobs[str(answer["job_id"])] = size
        first += size
    return jobs


def worker_of(pid: int) -> str:
    """Return a worker process's ``--worker`` id, as its command line says."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return "?"
    return args[args.index("--worker") + 1] if "--worker" in args[:-1] else "?"


def kill_worker(server: Server, pick: float) -> str | None:
    """SIGKILL one live worker chosen by ``pick``; describe it, or None if none was found."""
    deadline = time.monotonic() + WORKER_WAIT_S
    while time.monotonic() < deadline:
        pids = sorted(harness.worker_pids(server.url))
        if pids:
            pid = pids[int(pick * len(pids))]
            name = worker_of(pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue  # it exited meanwhile: pick again
            return f"worker pid {pid} ({name}), 1 of {len(pids)}"
        time.sleep(0.05)
    return None


def kill_orchestrator(server: Server) -> float:
    """SIGKILL the orchestrator, restart it on the same home and port; return the seconds."""
    started = time.monotonic()
    server.kill()
    server.start()
    return time.monotonic() - started


def run_schedule(server: Server, watcher: Watcher, kills: list[Kill], done: Done) -> None:
    """Do each kill once the run reaches its point; stop early only if every job ended."""
    for number, kill in enumerate(kills, 1):
        if not watcher.until(kill.at):
            progress(f"  every job ended before kill {number} (at {kill.at:.0%}): schedule cut")
            break
        time.sleep(kill.delay_s)
        where = f"kill {number}/{len(kills)} at {clock()}, {watcher.done:,} batches done:"
        if kill.target == "orchestrator":
            pid = server.proc.pid if server.proc else "?"
            seconds = kill_orchestrator(server)
            done.orchestrator += 1
            done.restart_s.append(seconds)
            watcher.restarted()
            progress(f"{where} orchestrator pid {pid}; answering again after {seconds:.1f}s")
        else:
            killed = kill_worker(server, kill.pick)
            if killed is None:
                progress(f"{where} no live worker within {WORKER_WAIT_S:g}s: skipped")
                continue
            done.workers += 1
            progress(f"{where} {killed}")


def chaos(plan: Plan, tmp: Path) -> int:
    """Run the jobs under the kill schedule, check them, report; return the exit status."""
    kills = schedule(plan)
    server = Server(tmp)
    try:
        server.start()
        server.request("POST", "/_cortex/apis", {"project_dir": str(BENCH_API)})
        progress(
            f"orchestrator {server.url} (pid {server.proc.pid if server.proc else '?'}),"
            f" home {server.home}; {plan.kills} kills"
            f" ({sum(k.target == 'orchestrator' for k in kills)} of the orchestrator),"
            f" seed {plan.seed}"
        )
        started = time.monotonic()
        jobs = submit_jobs(server, plan)
        progress(
            f"submitted {len(jobs)} jobs of {'/'.join(map(str, jobs.values()))} batches,"
            f" {plan.workers} workers each, sleep_s={plan.sleep_s:g}"
        )
        watcher = Watcher(server, jobs, started)
        done = Done()
        found: dict[str, dict[str, Any]] | None = None
        try:
            run_schedule(server, watcher, kills, done)
            found = watcher.until_ended(END_TIMEOUT_S)
            if found is None:
                progress(f"STUCK: not every job ended within {END_TIMEOUT_S:g}s of the last kill")
        except Stuck as e:
            progress(f"STUCK: {e}")
        wall_s = time.monotonic() - started
        if found is None:
            found = last_statuses(server, jobs)
        checks = [
            check_job(server, job_id, batches, found.get(job_id) or _unknown(job_id))
            for job_id, batches in jobs.items()
        ]
        workers_left = workers_remaining(server.url, TERMINAL_WORKER_WAIT_S)
        line = report(checks, done, wall_s, workers_left, sum(watcher.errors.values()))
        bad = any(c.wrong or c.lost or c.twice for c in checks)
        if bad:
            show_problems(server, checks)
        if done.total < plan.kills:
            progress(
                f"FAILED: only {done.total} of {plan.kills} kills were done: the jobs outran"
                " the schedule; give them more work (--batches, --sleep-s) or ask fewer kills"
            )
        print(line, flush=True)
        return 1 if bad else 2 if done.total < plan.kills else 0
    finally:
        server.close()


def show_problems(server: Server, checks: list[Any]) -> None:
    """Print the orchestrator's errors and restarts, and the log of each job found wrong."""
    progress(f"orchestrator log ({server.log_path}), errors and restarts:")
    for entry in log_problems(server.log_path):
        progress(f"  | {entry}")
    for check in checks:
        if check.wrong or check.lost or check.twice:
            job_log = server.home / "logs" / check.job_id / "orchestrator.log"
            progress(f"job {check.job_id}'s log ({job_log}), last lines:")
            for entry in tail(job_log, 30):
                progress(f"  | {entry}")


def last_statuses(server: Server, jobs: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Return the statuses of the jobs that the orchestrator still reports."""
    found = {}
    for job_id in jobs:
        with contextlib.suppress(httpx.HTTPError, HttpError):
            found[job_id] = server.request("GET", f"/{API}/{job_id}")["job_status"]
    return found


def _unknown(job_id: str) -> dict[str, Any]:
    """Return a stand-in status for a job the orchestrator no longer lists."""
    metrics = {"succeeded": 0, "failed": 0, "total": 0}
    return {"job_id": job_id, "status": "missing", "batch_metrics": metrics}


def parse_args(argv: list[str] | None = None) -> tuple[Plan, bool]:
    """Parse the command line into a plan, and whether to keep the home afterwards."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="the schedule's seed")
    parser.add_argument("--kills", type=int, help="kills in all (default 30; --quick 10)")
    parser.add_argument("--batches", type=int, help="in all (default 10,000; --quick 1,000)")
    parser.add_argument("--jobs", type=int, default=4, help="jobs (default 4)")
    parser.add_argument("--workers", type=int, default=2, help="workers per job (default 2)")
    parser.add_argument("--sleep-s", type=float, help="per batch (default 0.02; --quick 0.05)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1,000 batches, 10 kills")
    parser.add_argument("--keep", action="store_true", help="keep the home and log afterwards")
    args = parser.parse_args(argv)
    quick = args.quick
    plan = Plan(
        seed=args.seed,
        kills=args.kills if args.kills is not None else 10 if quick else 30,
        batches=args.batches if args.batches is not None else 1_000 if quick else 10_000,
        jobs=args.jobs,
        workers=args.workers,
        sleep_s=args.sleep_s if args.sleep_s is not None else 0.05 if quick else 0.02,
    )
    if plan.kills < 1 or plan.jobs < 1 or plan.workers < 1 or plan.batches < plan.jobs:
        parser.error("--kills, --jobs and --workers must be positive, --batches at least --jobs")
    return plan, bool(args.keep)


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    """Turn SIGTERM into KeyboardInterrupt so that the orchestrator and workers are killed."""
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Run the chaos benchmark; return its exit status."""
    plan, keep = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    tmp = Path(tempfile.mkdtemp(prefix="cortex-chaos-"))
    try:
        return chaos(plan, tmp)
    except KeyboardInterrupt:
        progress("interrupted: the orchestrator and every worker were killed")
        return 130
    finally:
        if keep:
            progress(f"kept {tmp} (home/, orchestrator.log)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
