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
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any

import harness
import httpx
from harness import BENCH_API, ROOT, progress

API = "bench"
SETTINGS = (
    "visibility_timeout_s=3",
    "heartbeat_interval_s=1",
    "tick_s=0.2",
    "stop_grace_s=3",
)
DEFAULT_SEED = 20261127
ORCHESTRATOR_SHARE = 0.4  # of the kills; the rest are workers
KILL_FROM, KILL_UNTIL = 0.02, 0.75  # kills land between these fractions of all batches done
MAX_DELAY_S = 0.3  # after its point is reached, a kill waits a seeded 0..this
POLL_S = 0.1
REPORT_EVERY_S = 5.0
START_TIMEOUT_S = 30.0
WORKER_WAIT_S = 15.0  # how long a worker kill waits for a live worker to pick
END_TIMEOUT_S = 300.0  # after the last kill, for every job to end
STUCK_S = 90.0  # no status answer, or no batch finished, for this long: the run is stuck
TERMINAL_WORKER_WAIT_S = 15.0  # after the jobs ended, for their workers to exit


class HttpError(RuntimeError):
    """The orchestrator answered a request with an error status."""


class Stuck(RuntimeError):
    """The jobs stopped making progress, or the orchestrator stopped answering."""


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


class Server:
    """An orchestrator subprocess on a fixed home and port that can be killed and restarted."""

    def __init__(self, tmp: Path) -> None:
        self.home = tmp / "home"
        self.log_path = tmp / "orchestrator.log"
        self.port = harness.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = httpx.Client(base_url=self.url, timeout=60)
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._log: IO[bytes] = open(self.log_path, "ab")  # noqa: SIM115 (closed in close())

    def start(self) -> None:
        """Start the orchestrator and wait until it answers (retrying a port still busy)."""
        for attempt in range(5):
            self.starts += 1
            mark = f"=== chaos: start #{self.starts} at {_clock()} ===\n"
            self._log.write(mark.encode())
            self._log.flush()
            command = [sys.executable, "-m", "orchestrator", "--home", str(self.home)]
            command += ["--port", str(self.port)]
            for pair in SETTINGS:
                command += ["--set", pair]
            self.proc = subprocess.Popen(
                command,
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self.http.headers.pop("Authorization", None)  # re-read after every start
            if self._wait_healthy():
                return
            progress(f"  orchestrator exited at start (attempt {attempt + 1}); retrying")
            time.sleep(0.5)
        raise RuntimeError(f"the orchestrator would not start; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL the orchestrator and reap it."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Send one request (with the token once there is one) and return its JSON answer."""
        self._authorize()
        if body is None:
            response = self.http.request(method, path)
        else:
            content = json.dumps(body).encode()
            headers = {"Content-Type": "application/json"}
            response = self.http.request(method, path, content=content, headers=headers)
        if response.status_code >= 400:
            raise HttpError(f"{method} {path}: HTTP {response.status_code}: {response.text[:300]}")
        return response.json()

    def result_lines(self, job_id: str) -> list[dict[str, Any]]:
        """Return every result line of the job, as stored."""
        self._authorize()
        lines = []
        with self.http.stream("GET", f"/_cortex/apis/{API}/jobs/{job_id}/results") as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if line.strip():
                    lines.append(json.loads(line))
        return lines

    def close(self) -> None:
        """Kill the orchestrator, then every worker of this URL (they outlive it)."""
        if self.proc is not None and self.proc.poll() is None:
            self.kill()
        harness.kill_workers(self.url)
        self.http.close()
        self._log.close()

    def _authorize(self) -> None:
        if "Authorization" not in self.http.headers:
            token = harness.home_token(self.home)
            if token is not None:
                self.http.headers["Authorization"] = f"Bearer {token}"

    def _wait_healthy(self) -> bool:
        """Wait until the health check answers 200; False if the process exited first."""
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            self._authorize()
            with contextlib.suppress(httpx.TransportError):
                if self.http.get("/_cortex/health", timeout=2).status_code == 200:
                    self._authorize()  # in case the token was written just before answering
                    return True
            time.sleep(0.05)
        raise RuntimeError(f"the orchestrator did not answer within {START_TIMEOUT_S:g}s")


def _clock() -> str:
    """Return the wall-clock time to the millisecond, to match the orchestrator's log."""
    return datetime.now().strftime("%H:%M:%S.%f")[:-3]


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


def statuses(server: Server, jobs: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Return each job's ``job_status`` (``GET /bench/<job_id>``)."""
    return {job_id: server.request("GET", f"/{API}/{job_id}")["job_status"] for job_id in jobs}


def batches_done(found: dict[str, dict[str, Any]]) -> int:
    """Return the batches the jobs have finished, succeeded or failed."""
    return sum(
        s["batch_metrics"]["succeeded"] + s["batch_metrics"]["failed"] for s in found.values()
    )


def all_ended(found: dict[str, dict[str, Any]], jobs: dict[str, int]) -> bool:
    """Return whether every job has a terminal status."""
    return len(found) == len(jobs) and all(
        s["status"] not in harness.IN_PROGRESS for s in found.values()
    )


class Watcher:
    """Polls the jobs' progress, printing a line every few seconds; raises Stuck if stuck."""

    def __init__(self, server: Server, jobs: dict[str, int], started: float) -> None:
        self.server = server
        self.jobs = jobs
        self.total = sum(jobs.values())
        self.started = started
        self.last_report = 0.0
        self.last_answer = self.last_progress = started
        self.done = 0
        self.errors: Counter[str] = Counter()  # error answers to status requests

    def poll(self) -> dict[str, dict[str, Any]] | None:
        """Poll once; return the statuses (None while the orchestrator is away)."""
        found: dict[str, dict[str, Any]] | None = None
        try:
            found = statuses(self.server, self.jobs)
        except httpx.TransportError:
            pass  # restarting: expected
        except HttpError as e:
            if not self.errors[str(e)]:
                progress(f"  status request answered with an error: {e}")
            self.errors[str(e)] += 1
        now = time.monotonic()
        if found is not None:
            self.last_answer = now
            done = batches_done(found)
            if done != self.done or all_ended(found, self.jobs):
                self.done, self.last_progress = done, now
        if now - self.last_report >= REPORT_EVERY_S:
            self.last_report = now
            states = Counter(s["status"] for s in (found or {}).values())
            shown = ", ".join(f"{n}x{state}" for state, n in sorted(states.items()))
            progress(
                f"  t={now - self.started:5.1f}s {self.done:,}/{self.total:,} batches"
                f" done; {shown or 'orchestrator away'}"
            )
        if now - self.last_answer > STUCK_S:
            raise Stuck(f"the orchestrator has not answered a status request for {STUCK_S:g}s")
        if now - self.last_progress > STUCK_S:
            raise Stuck(f"no batch finished for {STUCK_S:g}s ({self.done:,} done)")
        return found

    def until(self, fraction: float) -> bool:
        """Wait until that fraction of all batches is done; False if every job ended first."""
        while True:
            found = self.poll()
            if found is not None:
                if all_ended(found, self.jobs):
                    return False
                if self.done >= fraction * self.total:
                    return True
            time.sleep(POLL_S)

    def until_ended(self, timeout_s: float) -> dict[str, dict[str, Any]] | None:
        """Wait until every job has ended; return the statuses, or None on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self.poll()
            if found is not None and all_ended(found, self.jobs):
                return found
            time.sleep(POLL_S)
        return None

    def restarted(self) -> None:
        """Note that the orchestrator was just restarted: its downtime is not a stall."""
        self.last_answer = self.last_progress = time.monotonic()


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
        where = f"kill {number}/{len(kills)} at {_clock()}, {watcher.done:,} batches done:"
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


def _tail(path: Path, lines: int) -> list[str]:
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
            progress(f"orchestrator log ({server.log_path}), errors and restarts:")
            for entry in log_problems(server.log_path):
                progress(f"  | {entry}")
            for check in checks:
                if check.wrong or check.lost or check.twice:
                    job_log = server.home / "logs" / check.job_id / "orchestrator.log"
                    progress(f"job {check.job_id}'s log ({job_log}), last lines:")
                    for entry in _tail(job_log, 30):
                        progress(f"  | {entry}")
        if done.total < plan.kills:
            progress(
                f"FAILED: only {done.total} of {plan.kills} kills were done: the jobs outran"
                " the schedule; give them more work (--batches, --sleep-s) or ask fewer kills"
            )
        print(line, flush=True)
        return 1 if bad else 2 if done.total < plan.kills else 0
    finally:
        server.close()


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
