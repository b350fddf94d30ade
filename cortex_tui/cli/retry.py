"""``cortex-tui retry API JOB_ID``: re-run exactly a job's failed batches as a new job."""

from __future__ import annotations

import argparse
from typing import Any

from cortex_tui.cli.connect import connect, hint
from cortex_tui.cli.numbers import positive_int, seconds
from cortex_tui.cli.output import add_output_option, note, print_json
from cortex_tui.cli.submit import AUTH_HEADER, wait_and_report
from cortex_tui.client import CortexClient
from cortex_tui.items import parse_config


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``retry`` to the command parsers."""
    parser = commands.add_parser(
        "retry",
        parents=[common],
        help="re-run a job's failed batches as a new job",
        description="Submit a new job made of exactly the failed batches of a job that has"
        " ended, with that job's config (and workers, timeout, retries, backend) unless"
        " overridden. Its items keep their indices: `cortex-tui results API JOB_ID"
        " --merge-retries` gives the job's results with the retry's filling in the failures."
        " A retry can itself be retried.",
    )
    parser.add_argument("api", help="the API of the job")
    parser.add_argument("job_id", help="the job whose failed batches to re-run (or latest)")
    _add_options(parser)
    add_output_option(parser)
    parser.set_defaults(func=run)


def _add_options(parser: argparse.ArgumentParser) -> None:
    """Add what a retry may override of its job: workers, config, batches, how it runs."""
    parser.add_argument(
        "--workers", type=positive_int, metavar="N", help="workers to run (default: the job's)"
    )
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config deep-merged over the job's; the value is JSON if it parses,"
        " a dotted key nests (repeatable)",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        metavar="N",
        help="re-split the failed items into batches of N (default: the batches as they were)",
    )
    parser.add_argument(
        "--timeout", type=seconds, metavar="SECONDS", help="stop the retry after this many seconds"
    )
    parser.add_argument(
        "--retries", type=int, metavar="N", help="retries of a batch whose predict raises"
    )
    parser.add_argument(
        "--backend", metavar="NAME", help="run on process, docker or aws (default: the job's)"
    )
    parser.add_argument(
        "--isolate-failures",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="split a batch that fails again in halves until each failing item stands alone"
        " (default: as the job did)",
    )
    parser.add_argument(
        "--wait",
        action="store_true",
        help="follow the retry until it ends; exit 0 only if it succeeded",
    )


def run(args: argparse.Namespace) -> int:
    """Submit the retry, and report (or wait for) it."""
    body = build_body(args)
    as_json = args.output == "json"
    with connect(args) as client:
        job = client.retry(args.api, args.job_id, body)
        job_id = job["job_id"]
        if as_json and not args.wait:
            print_json(job)
        elif not as_json:
            batches = (job.get("source") or {}).get("batches")
            plural = "" if batches == 1 else "es"
            what = f"{batches} failed batch{plural}" if batches else "the failures"
            workers = job.get("workers")
            print(
                f"submitted job {job_id} to {args.api}: a retry of {what} of job"
                f" {job['parent_job_id']} ({workers} worker{'' if workers == 1 else 's'})"
            )
            if not args.wait:
                print(f"follow it: {hint(args, 'get', args.api, job_id, '--watch')}")
                root = first_of_family(client, args.api, job["parent_job_id"])
                merged = hint(args, "results", args.api, root, "--merge-retries")
                print(f"merged results: {merged}")
                print(f"job status: curl {AUTH_HEADER} {client.base_url}/{args.api}/{job_id}")
        return wait_and_report(args, client, job_id, as_json) if args.wait else 0


def first_of_family(client: CortexClient, api: str, job_id: str) -> str:
    """Return the job a chain of retries started from (whose merged results hold them all)."""
    for _ in range(1000):  # a chain is as long as the retries made; this bounds a cycle
        parent = client.get_job(api, job_id)["job_status"].get("parent_job_id")
        if not parent:
            break
        job_id = str(parent)
    return job_id


def build_body(args: argparse.Namespace) -> dict[str, Any]:
    """Return the retry's body: only what the command line overrides."""
    body: dict[str, Any] = {}
    config = parse_config(args.config, note=note)
    if config:
        body["config"] = config
    for key in ("workers", "batch_size", "timeout", "retries", "backend", "isolate_failures"):
        if getattr(args, key) is not None:
            body[key] = getattr(args, key)
    return body
