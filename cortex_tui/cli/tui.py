"""``cortex-tui tui`` (and plain ``cortex-tui``): open the terminal UI."""

from __future__ import annotations

import argparse
import contextlib
import sys

from cortex_tui.client import CortexClient
from cortex_tui.embedded import ensure_server, home_dir, resolve_url, token_source
from cortex_tui.errors import ServerUnreachable

# The UI polls every few seconds: a request that hangs longer than this shows the banner.
REQUEST_TIMEOUT_S = 10.0


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``tui`` to the command parsers."""
    parser = commands.add_parser(
        "tui",
        parents=[common],
        help="open the terminal UI (the default without a command)",
        description="Open the terminal UI: APIs, jobs, live worker stats and logs; stop,"
        " submit and deploy. Press ? in any view for its keys.",
    )
    add_options(parser)
    parser.set_defaults(func=run)


def add_options(parser: argparse.ArgumentParser) -> None:
    """Add the UI's options (also accepted without the ``tui`` command)."""
    parser.add_argument(
        "--readonly",
        action="store_true",
        default=argparse.SUPPRESS,
        help="refuse every change, in the terminal UI and on the command line alike:"
        " deploying, submitting, retrying, stopping jobs, deleting APIs, pruning, aws setup"
        " and teardown (reading still works)",
    )
    parser.add_argument(
        "--refresh",
        type=_interval,
        metavar="SECONDS",
        default=argparse.SUPPRESS,
        help="seconds between two refreshes of a view (default: 2)",
    )


def run(args: argparse.Namespace) -> int:
    """Open the app against the configured orchestrator, starting the embedded one if needed."""
    from cortex_tui.tui.app import DEFAULT_REFRESH_S, CortexApp

    url = resolve_url(args.server)
    client = CortexClient(url, timeout=REQUEST_TIMEOUT_S, token=token_source(url, home_dir()))
    notices: list[str] = []

    def announce(line: str) -> None:
        print(line, file=sys.stderr)
        notices.append(line)

    # A remote server that is down: the app opens anyway, shows it and keeps retrying.
    with contextlib.suppress(ServerUnreachable):
        ensure_server(client, home_dir(), announce)
    with client:
        app = CortexApp(
            client,
            readonly=getattr(args, "readonly", False),
            refresh_s=getattr(args, "refresh", DEFAULT_REFRESH_S),
            notices=notices,
        )
        app.run()
    return 0


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0.2 <= value <= 60:
        raise argparse.ArgumentTypeError(f"must be between 0.2 and 60 seconds, got {value:g}")
    return value
