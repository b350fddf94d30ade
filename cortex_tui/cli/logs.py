"""``cortex-tui logs API JOB_ID``: a job's logs, all workers interleaved."""

from __future__ import annotations

import argparse
import sys

from cortex_tui.cli.connect import connect


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``logs`` to the command parsers."""
    parser = commands.add_parser(
        "logs",
        parents=[common],
        help="print a job's logs",
        description="Print a job's logs: the orchestrator's and every worker's lines, tagged"
        " [orchestrator], [w0], [w1], ... and interleaved in time order.",
    )
    parser.add_argument("api", help="the API of the job")
    parser.add_argument("job_id", help="the job id")
    parser.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="keep printing new lines until the job ends (Ctrl-C to stop)",
    )
    parser.add_argument("--worker", metavar="NAME", help="only this worker's lines, e.g. w0")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Stream the job's log lines to stdout."""
    with connect(args) as client:
        try:
            for line in client.logs(args.api, args.job_id, follow=args.follow, worker=args.worker):
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
        except KeyboardInterrupt:
            return 0
    return 0
