"""``cortex-tui prune``: reclaim disk from ended jobs, unused snapshots and images, and the
database's free space; say what goes and ask first."""

from __future__ import annotations

import argparse
import re
import sys

from cortex_tui import footprint
from cortex_tui.cli.confirm import confirmed
from cortex_tui.cli.connect import connect
from cortex_tui.cli.output import add_output_option, print_json
from cortex_tui.errors import InputError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    """Return the seconds of ``30d``, ``12h``, ``90m``, ``45s``, ``2w`` (or ``0``)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhdw])", text.strip())
    if text.strip() == "0":
        return 0.0
    if match is None:
        raise InputError(
            f"--older-than {text}: give a number and a unit: s, m, h, d or w (e.g. 30d, 12h)"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``prune`` to the command parsers."""
    parser = commands.add_parser(
        "prune",
        parents=[common],
        help="reclaim disk: ended jobs, unused snapshots and images, database space",
        description="Remove ended jobs (of every API, deleted ones too) with their results and"
        " logs, API snapshots and docker images of API versions nothing runs from, then"
        " compact the database. Running jobs and deployed APIs' current versions are never"
        " touched. It says what would go and asks first.",
    )
    parser.add_argument(
        "--older-than",
        metavar="DURATION",
        help="only jobs that ended at least this long ago (30d, 12h, 90m; default: any ended job)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="say what would be removed; change nothing"
    )
    parser.add_argument(
        "-y", "--yes", action="store_true", help="remove without asking (for scripts)"
    )
    add_output_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Show what would go, ask, then prune and say what went."""
    older = None if args.older_than is None else parse_duration(args.older_than)
    as_json = args.output == "json"
    said = sys.stderr if as_json and not args.dry_run else sys.stdout
    ended_before = None
    with connect(args) as client:
        if not args.yes or args.dry_run:
            preview = client.prune(older, dry_run=True)
            # The prune removes no job that ended after the preview looked.
            ended_before = preview.get("ended_before")
            if as_json and args.dry_run:
                print_json(preview)
                return 0
            print("would remove:", file=said)
            for line in footprint.prune_report(preview):
                print(f"  {line}", file=said)
            if args.dry_run:
                return 0
            command = "cortex-tui prune" + (
                f" --older-than {args.older_than}" if args.older_than is not None else ""
            )
            if not confirmed("remove them?", command):
                return 1
        report = client.prune(older, dry_run=False, ended_before=ended_before)
    if as_json:
        print_json(report)
        return 0
    print("removed:")
    for line in footprint.prune_report(report):
        print(f"  {line}")
    return 0
