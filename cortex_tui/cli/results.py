"""``cortex-tui results API JOB_ID``: a job's results as JSON lines, in item order."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

from cortex_tui.cli.connect import connect
from cortex_tui.errors import InputError


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``results`` to the command parsers."""
    parser = commands.add_parser(
        "results",
        parents=[common],
        help="print a job's results as JSON lines",
        description="Print a job's results, one JSON object per line in item order:"
        ' {"item_index", "batch_index", "result"}. A batch whose predict returned something'
        " other than one result per item gives one line for the whole batch.",
    )
    parser.add_argument("api", help="the API of the job")
    parser.add_argument("job_id", help="the job id")
    parser.add_argument(
        "--merge-retries",
        action="store_true",
        help="fill in the job's failed items with its retries' results (and their retries'):"
        ' one line per item, each naming the "job_id" it is from',
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="write the lines to FILE instead of stdout",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Stream the results to stdout or to a file."""
    with connect(args) as client:
        lines = client.results(args.api, args.job_id, merge_retries=args.merge_retries)
        if args.output is None:
            for line in lines:
                sys.stdout.write(line + "\n")
            return 0
        count = _write(args.output, lines)
    print(f"wrote {count} result{'' if count == 1 else 's'} to {args.output}", file=sys.stderr)
    return 0


def _write(path: Path, lines: Iterator[str]) -> int:
    """Write lines to ``path`` and return how many.

    The file is opened once the server has answered, so an unknown job leaves no empty file.
    """
    first = next(lines, None)
    count = 0
    try:
        with open(path, "w", encoding="utf-8") as f:
            for line in lines if first is None else chain([first], lines):
                f.write(line + "\n")
                count += 1
    except OSError as e:
        raise InputError(f"{path}: {e.strerror}") from None
    return count
