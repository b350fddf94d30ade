"""``cortex-tui deploy [PATH]``: deploy (or update) the APIs of a project directory, or of
a ``cortex.yaml`` file given by its path (Cortex's habit)."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import Any

from cortex_tui.cli.connect import connect
from cortex_tui.cli.output import add_output_option, print_json
from cortex_tui.cli.status_line import Spinner
from cortex_tui.client import CortexClient
from cortex_tui.errors import CortexTuiError

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
        metavar="PATH",
        help="the project directory, or its cortex.yaml (default: the current directory)",
    )
    parser.add_argument(
        "--config-file",
        default=None,
        help="the configuration file in the directory (default: cortex.yaml)",
    )
    add_output_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Deploy and print one line per API."""
    project, config_file = Path(args.project_dir), args.config_file
    with connect(args) as client, Spinner(f"deploying {args.project_dir}") as spinner:
        response = _deploy_showing_builds(client, spinner, project, config_file)
    if args.output == "json":
        print_json(response)
        return 0
    for api in response.get("apis", []):
        template = _RESULTS.get(api.get("result", ""), "{} deployed")
        print(template.format(api["name"]))
        if api.get("image_built"):
            print(
                f"  built image {api['image']} in {api.get('image_build_s', 0):.1f}s"
                f" (build log: {api.get('image_build_log')})"
            )
    return 0


def _deploy_showing_builds(
    client: CortexClient, spinner: Spinner, project: Path, config_file: str | None
) -> Any:
    """Deploy on a thread while showing the step of any image build the server runs."""
    outcome: dict[str, Any] = {}

    def deploy() -> None:
        try:
            outcome["response"] = client.deploy(project, config_file)
        except BaseException as e:  # re-raised on the calling thread
            outcome["error"] = e

    thread = threading.Thread(target=deploy, name="deploy", daemon=True)
    thread.start()
    base, shown = spinner.message, ""
    while thread.is_alive():
        thread.join(0.5)
        try:
            builds = client.builds().get("builds", []) if thread.is_alive() else []
        except CortexTuiError:
            builds = []  # an older server without the route: the spinner alone
        for build in builds:
            step = f"building image {build.get('image')}: {build.get('step')}"
            spinner.message = f"{base}: {step}"
            if step != shown and not spinner.line.tty:
                print(step, file=sys.stderr, flush=True)
            shown = step
    if "error" in outcome:
        raise outcome["error"]
    return outcome["response"]
