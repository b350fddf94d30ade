"""``cortex-tui deploy [DIR]``: deploy (or update) the APIs of a project directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from cortex_tui.cli.connect import connect
from cortex_tui.cli.output import add_output_option, print_json
from cortex_tui.cli.status_line import Spinner

_RESULTS = {"created": "created {}", "updated": "updated {}", "up_to_date": "{} is up to date"}


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``deploy`` to the command parsers."""
    parser = commands.add_parser(
        "deploy",
        parents=[common],
        help="deploy the APIs of a project directory",
        description="Deploy every API of a project's cortex.yaml; deploying again updates"
        " them (running jobs keep the version they started with).",
    )
    parser.add_argument(
        "project_dir",
        nargs="?",
        default=".",
        metavar="DIR",
        help="the project directory (default: the current one)",
    )
    parser.add_argument(
        "--config-file",
        default="cortex.yaml",
        help="the configuration file in DIR (default: cortex.yaml)",
    )
    add_output_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Deploy and print one line per API."""
    project = Path(args.project_dir).resolve()
    with connect(args) as client, Spinner(f"deploying {args.project_dir}"):
        response = client.deploy(project, args.config_file)
    if args.output == "json":
        print_json(response)
        return 0
    for api in response.get("apis", []):
        template = _RESULTS.get(api.get("result", ""), "{} deployed")
        print(template.format(api["name"]))
    return 0
