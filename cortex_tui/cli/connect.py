"""Connect a command to the orchestrator, starting the embedded one when needed."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cortex_tui.client import CortexClient
from cortex_tui.embedded import ensure_server, home_dir, resolve_url, token_source

#: The commands that start the embedded orchestrator even after ``cortex-tui down``.
STARTS_AFTER_DOWN = frozenset({"up", "deploy", "submit", "retry", "delete"})


def connect(args: argparse.Namespace, overrides: Sequence[str] = ()) -> CortexClient:
    """Return a client for the orchestrator the command targets, starting it if needed.

    ``overrides`` (``KEY=VALUE`` settings) apply only if the orchestrator is started here.
    """
    url = resolve_url(args.server)
    client = CortexClient(url, token=token_source(url, home_dir()))
    try:
        started = ensure_server(
            client,
            home_dir(),
            lambda line: print(line, file=sys.stderr),
            overrides,
            after_down=args.command in STARTS_AFTER_DOWN,
        )
    except BaseException:
        client.close()
        raise
    if overrides and not started:
        print(
            "the orchestrator was already running, so --set changed nothing; stop it with"
            " cortex-tui down, then start it again with the settings",
            file=sys.stderr,
        )
    return client


def hint(args: argparse.Namespace, *words: str) -> str:
    """Return a ``cortex-tui ...`` command to suggest, with ``--server`` if one was given."""
    server = ["--server", args.server] if args.server else []
    return " ".join(["cortex-tui", *server, *words])
