"""``cortex-tui failed API JOB_ID``: the job's failed-batch ledger."""

from __future__ import annotations

import argparse
import json
from typing import Any

from cortex_tui.cli.connect import connect
from cortex_tui.cli.output import add_output_option, print_json
from cortex_tui.cli.render import truncate

PAYLOAD_PREVIEW = 100


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``failed`` to the command parsers."""
    parser = commands.add_parser(
        "failed",
        parents=[common],
        help="show a job's failed batches",
        description="Show the batches of a job that failed after their retries: where,"
        " how often, on which worker, the error and the start of the payload. In a job"
        " submitted with --isolate-failures, a failed batch's failing items are shown one"
        " by one.",
    )
    parser.add_argument("api", help="the API of the job")
    parser.add_argument("job_id", help="the job id")
    parser.add_argument("--traceback", action="store_true", help="show each error's traceback")
    add_output_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the ledger."""
    with connect(args) as client:
        ledger = client.failed(args.api, args.job_id)
    if args.output == "json":
        print_json(ledger)
    else:
        print(render(ledger.get("failed_batches") or [], args.traceback))
    return 0


def render(batches: list[dict[str, Any]], traceback: bool) -> str:
    """Return one block per failed batch, or a line saying there are none."""
    if not batches:
        return "no failed batches"
    return "\n\n".join(_block(batch, traceback) for batch in batches)


def _block(batch: dict[str, Any], traceback: bool) -> str:
    first, size = batch.get("first_item", 0), batch.get("size", 0)
    items = f"item {first}" if size == 1 else f"items {first}-{first + size - 1}"
    attempts = batch.get("attempts", 0)
    where = f"batch {batch.get('batch_index')} ({items})"
    if batch.get("isolation"):  # a failing item, or group, that isolation found in the batch
        where = f"batch {batch.get('batch_index')}, {items} ({batch['isolation']})"
    lines = [
        f"{where}: {attempts} attempt{'' if attempts == 1 else 's'},"
        f" last on worker {batch.get('worker') or '-'}",
        f"  error: {batch.get('error') or '-'}",
        f"  payload: {truncate(json.dumps(batch.get('payload')), PAYLOAD_PREVIEW)}",
    ]
    if traceback and batch.get("traceback"):
        lines.append("  traceback:")
        lines += [f"    {line}" for line in batch["traceback"].rstrip("\n").splitlines()]
    return "\n".join(lines)
