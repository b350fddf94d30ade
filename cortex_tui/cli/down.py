"""``cortex-tui down``: stop the embedded orchestrator of this home."""

from __future__ import annotations

import argparse

from cortex_tui.embedded import display_path, home_dir, stop_embedded


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``down`` to the command parsers (it acts on the home, so takes no ``--server``)."""
    parser = commands.add_parser(
        "down",
        help="stop the orchestrator of this home",
        description="Stop the orchestrator whose state is in CORTEX_TUI_HOME (default"
        " ~/.cortex-tui). Workers of running jobs keep running and reconnect when it"
        " starts again.",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Stop the orchestrator recorded in the home's ``server.json``."""
    home = home_dir()
    record = stop_embedded(home)
    if record is None:
        print(f"no orchestrator is running for {display_path(home)}")
    else:
        print(f"stopped the orchestrator at {record.url}")
    return 0
