"""``cortex-tui serve``: run the orchestrator in the foreground."""

from __future__ import annotations

import argparse
import os
import sys

from cortex_tui.embedded import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    DOWN_MARKER,
    display_path,
    home_dir,
    orchestrator_command,
    orchestrator_env,
    running_server,
)
from cortex_tui.errors import EmbeddedServerError


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
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help="address to listen on (default loopback; anything else prints a warning)",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on")
    parser.add_argument("--backend", default="process", help="default backend for workers")
    add_settings_option(parser, "override a server setting, e.g. visibility_timeout_s=10")
    parser.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS with this certificate")
    parser.add_argument("--tls-key", metavar="PEM", help="... and this private key")
    parser.add_argument(
        "--allowed-host",
        dest="allowed_hosts",
        action="append",
        default=[],
        metavar="NAME",
        help="a Host name clients may use besides loopback names and the bound address"
        " (repeatable), e.g. the machine's DNS name",
    )
    parser.set_defaults(func=run)


def add_settings_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    """Add the repeatable ``--set KEY=VALUE`` server-setting option (``serve``, ``up``)."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"{help_text} (repeatable)",
    )


def run(args: argparse.Namespace) -> int:
    """Replace this process with the orchestrator.

    Raises:
        EmbeddedServerError: An orchestrator already runs on this home (the orchestrator
            refuses a second one too, even where ``server.json`` does not name the first yet).
    """
    home = home_dir()
    if running := running_server(home):
        raise EmbeddedServerError(
            f"the orchestrator of {display_path(home)} already runs at {running.url} (pid"
            f" {running.pid}): use it, or stop it first with: cortex-tui down"
        )
    command = orchestrator_command(home, args.host, args.port, args.backend, args.overrides)
    for cert_or_key in ("tls_cert", "tls_key"):
        if value := getattr(args, cert_or_key):
            command += [f"--{cert_or_key.replace('_', '-')}", os.path.abspath(value)]
    for name in args.allowed_hosts:
        command += ["--allowed-host", name]
    scheme = "https" if args.tls_cert else "http"
    print(
        f"serving the orchestrator at {scheme}://{args.host}:{args.port} (home"
        f" {display_path(home)}, backend {args.backend}); its token: cortex-tui token;"
        " stop it with Ctrl-C",
        file=sys.stderr,
    )
    sys.stdout.flush()
    sys.stderr.flush()
    (home / DOWN_MARKER).unlink(missing_ok=True)  # started on purpose: no longer "down"
    os.execve(command[0], command, orchestrator_env())
