"""``cortex-tui serve``: run the orchestrator in the foreground."""

from __future__ import annotations

import argparse
import os
import sys

from cortex_tui.embedded import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    display_path,
    home_dir,
    orchestrator_command,
    orchestrator_env,
)


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``serve`` to the command parsers (it runs a server, so takes no ``--server``)."""
    parser = commands.add_parser(
        "serve",
        help="run the orchestrator in the foreground",
        description="Run the orchestrator in the foreground until Ctrl-C, with its state in"
        " CORTEX_TUI_HOME (default ~/.cortex-tui).",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on")
    parser.add_argument("--backend", default="process", help="default backend for workers")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a server setting, e.g. visibility_timeout_s=10 (repeatable)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Replace this process with the orchestrator."""
    home = home_dir()
    command = orchestrator_command(home, args.host, args.port, args.backend, args.overrides)
    print(
        f"serving the orchestrator at http://{args.host}:{args.port} (home {display_path(home)},"
        f" backend {args.backend}); stop it with Ctrl-C",
        file=sys.stderr,
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(command[0], command, orchestrator_env())
