"""``python -m orchestrator.backends.aws.provision {setup,status,teardown} [--home DIR] ...``."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from orchestrator.backends.aws.provision.batch import DEFAULT_MAX_VCPUS
from orchestrator.backends.aws.provision.commands import COMMANDS, doing
from orchestrator.backends.aws.provision.home import Home, ProvisionError
from orchestrator.errors import OrchestratorError
from orchestrator.settings import Settings, default_home

#: The settings provisioning reads (give the orchestrator the same ones).
SETTINGS = ("aws_region", "aws_bucket", "aws_job_queue")


def settings_of(home: Path | None, pairs: list[str]) -> Settings:
    """Return the settings of ``home`` with ``--set KEY=VALUE`` pairs of ``SETTINGS``."""
    changes: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in SETTINGS:
            raise ProvisionError(
                f"--set {pair}: expected KEY=VALUE with KEY one of {', '.join(SETTINGS)}"
                " (the settings aws setup reads; give the orchestrator the same ones)"
            )
        changes[key] = value.strip()
    return dataclasses.replace(Settings(home=home or default_home()), **changes)


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of ``setup``, ``status`` and ``teardown``."""
    parser = argparse.ArgumentParser(
        prog="python -m orchestrator.backends.aws.provision",
        description="Set up, check or tear down a home's AWS resources for the aws backend.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--home", type=Path, help="the home (default: CORTEX_TUI_HOME)")
    common.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help=f"one of {', '.join(SETTINGS)} (repeatable)",
    )  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    setup_parser = commands.add_parser("setup", parents=[common], help="make what is missing")
    setup_parser.add_argument("--gpu", action="store_true", help="EC2 GPU instances, not Fargate")
    setup_parser.add_argument(
        "--max-vcpus", type=vcpus, metavar="N",
        help=f"the compute environment's vCPU ceiling (new ones: {DEFAULT_MAX_VCPUS})",
    )  # fmt: skip
    commands.add_parser("status", parents=[common], help="say what is there and what runs")
    teardown_parser = commands.add_parser("teardown", parents=[common], help="delete it all")
    teardown_parser.add_argument("--force", action="store_true", help="end what runs first")
    return parser


def vcpus(raw: str) -> int:
    """Return ``--max-vcpus``: a whole number of vCPUs, at least 1."""
    if not raw.isdigit() or int(raw) < 1:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of vCPUs (1 or more), not {raw!r}"
        )
    return int(raw)


def main(argv: list[str] | None = None) -> int:
    """Run one command and return its exit status: 0, 1 (missing, refused) or 2 (error)."""
    args = build_parser().parse_args(argv)
    try:
        settings = settings_of(args.home, args.overrides)
        with doing("connecting to AWS"):
            home = Home.connect(settings)
        print(f"home {home.path} (tag {home.tag}): account {home.account}, region {home.region}")
        return COMMANDS[args.command](home, args)
    except OrchestratorError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: run the command again to finish", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
