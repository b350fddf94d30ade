"""``cortex-tui get [API [JOB_ID]]``: APIs, an API's jobs, or one job, like ``cortex get``."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Callable

from cortex_tui.cli import get_apis, get_job, get_jobs
from cortex_tui.cli.connect import connect, hint
from cortex_tui.cli.output import add_output_option, format_json
from cortex_tui.cli.render import use_color
from cortex_tui.cli.watch import WATCH_HEADER_LINES, show
from cortex_tui.client import CortexClient
from cortex_tui.job_status import TERMINAL_STATUSES


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``get`` to the command parsers."""
    parser = commands.add_parser(
        "get",
        parents=[common],
        help="show APIs, an API's jobs, or a job",
        description="Without arguments, list the deployed APIs; with an API, list its jobs"
        " (newest first); with an API and a job id, show the job's status.",
    )
    parser.add_argument("api", nargs="?", help="an API name")
    parser.add_argument("job_id", nargs="?", help="a job id of the API")
    parser.add_argument(
        "-w",
        "--watch",
        action="store_true",
        help="render again every 2 seconds until Ctrl-C (a job's: until it ends; exit 0 only"
        " if it succeeded)",
    )
    add_output_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Render the view the arguments ask for, once or with ``--watch``."""
    title = hint(args, "get", *(word for word in (args.api, args.job_id) if word))
    with connect(args) as client:
        seen: dict[str, str] = {}
        code = show(_renderer(args, client, seen), args.watch, title, lambda: _ended(seen))
    if args.watch and _ended(seen) is not None:
        print(f"the job ended: {seen['status']}", file=sys.stderr)
    return code


def _ended(seen: dict[str, str]) -> int | None:
    """Return the exit status once the watched job has ended (0 if it succeeded), else None."""
    status = seen.get("status")
    if status is None or status not in TERMINAL_STATUSES:
        return None
    return 0 if status == "status_succeeded" else 1


def _renderer(
    args: argparse.Namespace, client: CortexClient, seen: dict[str, str]
) -> Callable[[], str]:
    color = use_color(sys.stdout)
    as_json = args.output == "json"

    def suggest(*words: str) -> str:
        return hint(args, *words)

    def render() -> str:
        if args.api is None:
            apis = client.list_apis()
            if as_json:
                return format_json(apis)
            return get_apis.render(apis, time.time(), color, suggest)
        if args.job_id is None:
            jobs = client.list_jobs(args.api)
            return format_json(jobs) if as_json else get_jobs.render(jobs, time.time(), color)
        job = client.get_job(args.api, args.job_id)
        seen["status"] = str(job.get("job_status", job).get("status", ""))
        if as_json:
            return format_json(job)
        workers = client.workers(args.api, args.job_id)
        if args.watch and sys.stdout.isatty():
            lines = shutil.get_terminal_size().lines - WATCH_HEADER_LINES
            return get_job.render_watch(job, workers, time.time(), color, suggest, lines)
        return get_job.render(job, workers, time.time(), color, suggest)

    return render
