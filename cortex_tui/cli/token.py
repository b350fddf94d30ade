"""``cortex-tui token``: print the token of this home's orchestrator, and nothing else."""

from __future__ import annotations

import argparse

from cortex_tui.cli.connect import connect
from cortex_tui.embedded import display_path, home_dir, read_token
from cortex_tui.errors import CortexTuiError


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``token`` to the command parsers (it reads the home, so takes no ``--server``)."""
    parser = commands.add_parser(
        "token",
        help="print the orchestrator's API token",
        description="Print the token of the orchestrator whose state is in CORTEX_TUI_HOME"
        " (default ~/.cortex-tui), for Authorization: Bearer headers:"
        ' curl -H "Authorization: Bearer $(cortex-tui token)" ... The orchestrator makes it'
        " when it first starts; if it never ran, this starts it. For a server in another"
        " home or on another machine, ask its operator and set CORTEX_TUI_TOKEN.",
    )
    parser.set_defaults(func=run, server=None)


def run(args: argparse.Namespace) -> int:
    """Print ``HOME/token``, starting the embedded orchestrator first if it never ran."""
    home = home_dir()
    token = read_token(home)
    if token is None:
        connect(args).close()  # the orchestrator writes its token as it starts
        token = read_token(home)
    if token is None:
        raise CortexTuiError(f"the orchestrator of {display_path(home)} has no token file")
    print(token)
    return 0
