"""``cortex-tui submit API``: submit a job of items from a file, optionally waiting for it."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from cortex_tui.cli.connect import connect, hint
from cortex_tui.cli.get_job import items_line
from cortex_tui.cli.numbers import positive_int, seconds
from cortex_tui.cli.output import add_output_option, note, print_json
from cortex_tui.cli.wait import outcome_text, wait_for_job
from cortex_tui.client import CortexClient
from cortex_tui.embedded import resolve_url
from cortex_tui.errors import InputError
from cortex_tui.items import parse_config, read_items, read_jsonl

# The reference's limit on a request; larger jobs stream their items from files.
MAX_BODY_BYTES = 10 * 1024 * 1024

#: What a curl command needs to reach the orchestrator (README, "Security").
AUTH_HEADER = '-H "Authorization: Bearer $(cortex-tui token)"'


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``submit`` to the command parsers."""
    parser = commands.add_parser(
        "submit",
        parents=[common],
        help="submit a job to an API",
        description="Submit a job whose items come from a file, split into batches of"
        " --batch-size items worked through by --workers workers.",
    )
    parser.add_argument("api", help="the API to submit the job to")
    _add_source_options(parser)
    _add_job_options(parser)
    add_output_option(parser)
    parser.set_defaults(func=run)


def _add_source_options(parser: argparse.ArgumentParser) -> None:
    """Add where the items come from, how they are batched, and the job's config."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--items", type=Path, metavar="FILE", help="a JSON file holding a list")
    source.add_argument(
        "--jsonl",
        type=Path,
        metavar="FILE",
        help="a newline-delimited JSON file, one item per line",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=1,
        metavar="N",
        help="items per batch (default: 1)",
    )
    parser.add_argument(
        "--workers", type=positive_int, default=1, metavar="N", help="workers to run (default: 1)"
    )
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="job config overriding the API's; the value is JSON if it parses,"
        " a dotted key nests (repeatable)",
    )


def _add_job_options(parser: argparse.ArgumentParser) -> None:
    """Add how the job runs: its timeout, retries, isolation and backend; dry run, wait."""
    parser.add_argument(
        "--timeout", type=seconds, metavar="SECONDS", help="stop the job after this many seconds"
    )
    parser.add_argument(
        "--retries", type=int, metavar="N", help="retries of a batch whose predict raises"
    )
    parser.add_argument(
        "--isolate-failures",
        action="store_true",
        help="split a batch that failed after its retries in halves, recursively, until each"
        " failing item stands alone; the other items' results are kept (bounded by the"
        " isolation_max_calls_factor setting)",
    )
    parser.add_argument(
        "--backend",
        metavar="NAME",
        help="run this job's workers on process, docker or aws (default: the API's backend)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="validate the job and count its batches without submitting it",
    )
    parser.add_argument(
        "--wait",
        action="store_true",
        help="follow the job until it ends; exit 0 only if it succeeded",
    )


def run(args: argparse.Namespace) -> int:
    """Read the items, submit the job, and report (or wait for) it."""
    body = build_body(args)
    as_json = args.output == "json"
    with connect(args) as client:
        if args.dry_run:
            return _dry_run(args, client, body)
        job = client.submit(args.api, body)
        if as_json and not args.wait:
            print_json(job)
        elif not as_json:
            _report(args, client, job, body)
        return wait_and_report(args, client, job["job_id"], as_json) if args.wait else 0


def build_body(args: argparse.Namespace) -> dict[str, Any]:
    """Return the submission body for the command's arguments."""
    path: Path = args.items or args.jsonl
    items = read_items(path) if args.items else read_jsonl(path)
    body: dict[str, Any] = {
        "workers": args.workers,
        "item_list": {"items": items, "batch_size": args.batch_size},
    }
    config = parse_config(args.config, note=note)
    if config:
        body["config"] = config
    if args.timeout is not None:
        body["timeout"] = args.timeout
    if args.retries is not None:
        body["retries"] = args.retries
    if args.isolate_failures:
        body["isolate_failures"] = True
    if args.backend is not None:
        body["backend"] = args.backend
    size = len(json.dumps(body).encode())
    if size > MAX_BODY_BYTES:
        raise InputError(_too_large(args, path, size))
    return body


def _too_large(args: argparse.Namespace, path: Path, size: int) -> str:
    lines = path.resolve()
    how = "instead"
    if args.items:  # a JSON list: the server reads files of one item per line
        lines = lines.with_suffix(".jsonl")
        convert = "import json, sys; [print(json.dumps(i)) for i in json.load(open(sys.argv[1]))]"
        how = f'write the items one JSON per line (python3 -c "{convert}" {path} > {lines}), then'
    example = json.dumps(
        {
            "workers": args.workers,
            "delimited_files": {"paths": [str(lines)], "batch_size": args.batch_size},
        }
    )
    return (
        f"{path}: the job would be a {size / 2**20:.1f} MB request, over the 10 MB limit;"
        f" {how} submit the file as delimited_files (from inside the API's project directory"
        " or a folder of the source_roots setting):"
        f" curl -X POST {resolve_url(args.server)}/{args.api} {AUTH_HEADER}"
        f" -H 'Content-Type: application/json' -d '{example}'"
    )


def _dry_run(args: argparse.Namespace, client: CortexClient, body: dict[str, Any]) -> int:
    plan = client.submit(args.api, body, dry_run=True)
    if args.output == "json":
        print_json(plan)
        return 0
    print(
        f"dry run: {plan.get('items')} items in {plan.get('batches')} batches of up to"
        f" {plan.get('batch_size')} for {_workers(plan.get('workers'))}; nothing was submitted"
    )
    return 0


def _report(
    args: argparse.Namespace, client: CortexClient, job: dict[str, Any], body: dict[str, Any]
) -> None:
    job_id = job["job_id"]
    source = body["item_list"]
    batches = math.ceil(len(source["items"]) / source["batch_size"])
    print(
        f"submitted job {job_id} to {args.api} ({batches} batch{'' if batches == 1 else 'es'},"
        f" {_workers(job.get('workers', body['workers']))})"
    )
    if not args.wait:
        print(f"follow it: {hint(args, 'get', args.api, job_id, '--watch')}")
        print(f"job status: curl {AUTH_HEADER} {client.base_url}/{args.api}/{job_id}")


#: Endings whose cause the workers' logs tell, rather than the results.
_LOOK_AT_LOGS = ("status_worker_error", "status_worker_oom", "status_unexpected_error")


def wait_and_report(
    args: argparse.Namespace, client: CortexClient, job_id: str, as_json: bool
) -> int:
    """Follow a job until it ends, say how it ended and what to look at; return 0 only if
    it succeeded."""
    try:
        status = wait_for_job(client, args.api, job_id)
    except KeyboardInterrupt:
        print(
            f"stopped waiting; job {job_id} goes on (stop it with:"
            f" {hint(args, 'delete', args.api, job_id)})",
            file=sys.stderr,
        )
        return 130
    if as_json:
        print_json({"job_status": status})
    else:
        print(outcome_text(status) + items_line(status, "\n"))
        if (status.get("batch_metrics") or {}).get("failed"):
            print(f"failed batches: {hint(args, 'failed', args.api, job_id)}")
            print(f"retry them: {hint(args, 'retry', args.api, job_id)}")
        if status.get("status") in _LOOK_AT_LOGS:  # what went wrong is in the workers' logs
            print(f"logs: {hint(args, 'logs', args.api, job_id)}")
        elif _saved_any(status):
            print(f"results: {hint(args, 'results', args.api, job_id)}")
    return 0 if status.get("status") == "status_succeeded" else 1


def _workers(count: object) -> str:
    """Return ``1 worker`` or ``N workers``."""
    return f"{count} worker{'' if count == 1 else 's'}"


def _saved_any(status: dict[str, Any]) -> bool:
    """Return whether the job has results: a batch succeeded, or an isolated item did."""
    succeeded = (status.get("batch_metrics") or {}).get("succeeded")
    return bool(succeeded or (status.get("item_metrics") or {}).get("succeeded"))
