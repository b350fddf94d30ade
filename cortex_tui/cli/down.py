"""``cortex-tui down``: stop the embedded orchestrator of this home."""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path

from cortex_tui.client import CortexClient
from cortex_tui.embedded import (
    display_path,
    home_dir,
    read_server_record,
    stop_embedded,
    token_source,
)
from cortex_tui.errors import ApiError, CortexTuiError
from cortex_tui.job_status import ENDED_WORKER_STATES, TERMINAL_STATUSES

#: How long ``--stop-jobs`` waits for the stopped jobs' workers to finish their batch and exit.
STOP_JOBS_WAIT_S = 60.0


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``down`` to the command parsers (it acts on the home, so takes no ``--server``)."""
    parser = commands.add_parser(
        "down",
        help="stop the orchestrator of this home",
        description="Stop the orchestrator whose state is in CORTEX_TUI_HOME (default"
        " ~/.cortex-tui). It says which jobs are still running: their workers wait for it"
        " (up to the orchestrator_wait_s setting, 600 s by default) and carry on when"
        " cortex-tui up starts it again (those that gave up are replaced); with --stop-jobs"
        " the jobs are stopped first. Until"
        " cortex-tui up (or deploy, submit, delete) starts it again, commands that only read"
        " say it is down instead of starting it.",
    )
    parser.add_argument(
        "--stop-jobs",
        action="store_true",
        help="stop every running job first (each finishes its current batches), then stop",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Stop the orchestrator recorded in the home's ``server.json``."""
    home = home_dir()
    running = _running_jobs(home)
    if running and args.stop_jobs:
        still_live = _stop_jobs(home, running)
        print(f"stopped {_count(running)} first: {_names(running)}")
        if still_live:
            print(
                f"the workers of {_names(still_live)} had not exited after"
                f" {STOP_JOBS_WAIT_S:.0f}s: they finish their batch and exit on their own"
            )
    record = stop_embedded(home)
    if record is None:
        print(f"no orchestrator is running for {display_path(home)}")
        return 0
    print(f"stopped the orchestrator at {record.url}")
    if running and not args.stop_jobs:
        print(
            f"{_count(running)} still running ({_names(running)}): their workers wait for the"
            " orchestrator for up to orchestrator_wait_s (600 s unless set) and carry on when"
            " cortex-tui up starts it again; those that gave up by then are replaced, and the"
            " jobs carry on. To stop them instead: cortex-tui up, then cortex-tui down"
            " --stop-jobs"
        )
    return 0


def _client(home: Path) -> CortexClient | None:
    """Return a client of the orchestrator recorded in the home, or None if none is."""
    record = read_server_record(home)
    if record is None:
        return None
    return CortexClient(record.url, token=token_source(record.url, home))


def _running_jobs(home: Path) -> list[tuple[str, str]]:
    """Return ``(api, job_id)`` of every job in progress, or [] if the server cannot say."""
    client = _client(home)
    if client is None:
        return []
    try:
        with client:
            return [
                (api["name"], job["job_id"])
                for api in client.list_apis()["apis"]
                if api["running_jobs"]
                for job in client.list_jobs(api["name"])["jobs"]
                if job["status"] not in TERMINAL_STATUSES
            ]
    except CortexTuiError:
        return []


def _stop_jobs(home: Path, jobs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Stop each job (one that ended meanwhile is left as it is), then wait (up to
    ``STOP_JOBS_WAIT_S``) until none has a live worker; return those that still have one."""
    client = _client(home)
    if client is None:
        return []
    with client:
        for api, job_id in jobs:
            with contextlib.suppress(ApiError):  # 409: it ended before it could be stopped
                client.stop_job(api, job_id)
        deadline = time.monotonic() + STOP_JOBS_WAIT_S
        waiting = list(jobs)
        while waiting and time.monotonic() < deadline:
            waiting = [
                (api, job_id)
                for api, job_id in waiting
                if _live_workers(client.job_status(api, job_id))
            ]
            if waiting:
                time.sleep(0.5)
        return waiting


def _live_workers(status: dict[str, object]) -> int:
    """Return how many of a job's workers have not ended (from its ``worker_stats``)."""
    stats = status.get("worker_stats")
    if not isinstance(stats, dict):
        return 0
    return sum(int(n) for state, n in stats.items() if state not in ENDED_WORKER_STATES)


def _count(jobs: list[tuple[str, str]]) -> str:
    return f"{len(jobs)} job" + ("" if len(jobs) == 1 else "s")


def _names(jobs: list[tuple[str, str]]) -> str:
    return ", ".join(f"{api} {job_id}" for api, job_id in jobs)
