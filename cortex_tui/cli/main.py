"""``cortex-tui``: deploy Batch APIs, submit jobs, and follow them, like Cortex's CLI."""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
from typing import NoReturn

from cortex_tui.cli import (
    aws,
    delete,
    deploy,
    down,
    failed,
    get,
    image,
    logs,
    prune,
    replay,
    results,
    retry,
    serve,
    submit,
    token,
    tui,
    up,
)
from cortex_tui.errors import ApiError, CortexTuiError

COMMANDS = (
    tui,
    deploy,
    get,
    submit,
    retry,
    logs,
    results,
    failed,
    replay,
    delete,
    prune,
    up,
    down,
    serve,
    token,
    image,
    aws,
)
_SERVER_HELP = (
    "the orchestrator's URL (default: $CORTEX_TUI_SERVER or http://127.0.0.1:7311; a loopback"
    " URL where nothing answers gets the embedded orchestrator started)"
)


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one ``error: ...`` line."""

    def error(self, message: str) -> NoReturn:
        """Print the error with a pointer to ``--help`` and exit with status 2."""
        self.exit(2, f"error: {message} (see: {self.prog} --help)\n")


def build_parser() -> Parser:
    """Return the parser of every command."""
    parser = Parser(
        prog="cortex-tui",
        description="Run Batch APIs locally: deploy a predictor, submit jobs of items, follow"
        " their workers, logs and results. Commands talk to the orchestrator, which is"
        " started in the background when needed (stop it with: cortex-tui down). Without a"
        " command, the terminal UI opens.",
    )
    parser.add_argument("--server", metavar="URL", help=_SERVER_HELP)
    parser.add_argument(
        "--version", action="version", version=f"cortex-tui {_version()}", help="say the version"
    )
    tui.add_options(parser)
    # Accept --server after the command too; SUPPRESS keeps the top-level value otherwise.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", metavar="URL", default=argparse.SUPPRESS, help=_SERVER_HELP)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for command in COMMANDS:
        command.add_parser(commands, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, or a usage error already printed
        return e.code if isinstance(e.code, int) else 0
    if getattr(args, "readonly", False) and (what := _changes(args)):
        print(
            f"error: --readonly: `cortex-tui {what}` would change what the orchestrator runs;"
            " run it without --readonly",
            file=sys.stderr,
        )
        return 1
    try:
        status: int = tui.run(args) if args.command is None else args.func(args)
    except CortexTuiError as e:
        print(f"error: {e}{_token_hint(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: say nothing, and keep Python from
        # complaining while it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return status


def _version() -> str:
    try:
        return importlib.metadata.version("cortex-tui")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout, not installed
        return "unknown (not installed)"


def _changes(args: argparse.Namespace) -> str | None:
    """Return the command line of a command that changes state (deploys, jobs, AWS), else None."""
    if args.command in ("deploy", "delete", "retry"):
        return str(args.command)
    if args.command in ("submit", "prune") and not args.dry_run:
        return str(args.command)
    if args.command == "aws" and args.aws_command in ("setup", "teardown"):
        return f"aws {args.aws_command}"
    if args.command == "down" and args.stop_jobs:
        return "down --stop-jobs"
    return None


def _token_hint(error: CortexTuiError) -> str:
    """Say which token a refused command sent, when the server refused it."""
    if not isinstance(error, ApiError) or error.status_code != 401:
        return ""
    if os.environ.get("CORTEX_TUI_TOKEN"):
        return " (CORTEX_TUI_TOKEN is set, and is not this server's token)"
    return ""


if __name__ == "__main__":
    sys.exit(main())
