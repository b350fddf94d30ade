"""``cortex-tui up``: start the embedded orchestrator if needed and say where it is."""

from __future__ import annotations

import argparse
from pathlib import Path

from cortex_tui.cli.connect import connect
from cortex_tui.cli.output import add_output_option, print_json
from cortex_tui.cli.serve import add_settings_option
from cortex_tui.embedded import display_path


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``up`` to the command parsers."""
    parser = commands.add_parser(
        "up",
        parents=[common],
        help="start the embedded orchestrator in the background",
        description="Start the embedded orchestrator in the background (if nothing answers"
        " at the server URL yet) and say where it is. --set KEY=VALUE settings apply when it"
        " is started here.",
    )
    add_settings_option(
        parser,
        "a server setting for the orchestrator started now, e.g. source_roots=/data,/mnt/shared",
    )
    add_output_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Ensure the orchestrator runs, then describe it."""
    with connect(args, args.overrides) as client:
        health = client.health()
    if args.output == "json":
        print_json(health)
        return 0
    print(
        f"the orchestrator is running at {client.base_url} (home"
        f" {display_path(Path(health['home']))}, backend {health['backend']}, pid {health['pid']})"
    )
    return 0
