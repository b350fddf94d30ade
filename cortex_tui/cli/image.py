"""``cortex-tui image build-base``: build the docker backend's offline worker base image."""

from __future__ import annotations

import argparse
import subprocess
import sys

from cortex_tui.embedded import orchestrator_env


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``image build-base`` to the command parsers (it needs no orchestrator)."""
    parser = commands.add_parser(
        "image",
        help="worker images of the docker backend",
        description="Manage the docker backend's worker images.",
    )
    actions = parser.add_subparsers(dest="image_command", metavar="ACTION", required=True)
    build = actions.add_parser(
        "build-base",
        help="build the default worker base image offline (Debian bookworm + Python 3.11)",
        description="Build the docker backend's default base image without a registry: a"
        " minimal Debian bookworm root filesystem with python3 from mmdebstrap, plus httpx and"
        " pip from wheels downloaded on this host. Needs a Docker engine and root (for"
        " mmdebstrap). An existing image of the same recipe is reused.",
    )
    build.add_argument("--tag", help="the image tag (default: one named by the recipe's hash)")
    build.add_argument("--mirror", help="the Debian mirror (default: http://deb.debian.org/debian)")
    build.add_argument("--wheels", metavar="DIR", help="use these wheels instead of pip download")
    build.add_argument("--force", action="store_true", help="rebuild even if the image exists")
    build.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the builder (part of the orchestrator package) as its own process."""
    command = [sys.executable, "-m", "orchestrator.backends.images.base_image"]
    for flag in ("tag", "mirror", "wheels"):
        value = getattr(args, flag)
        if value:
            command += [f"--{flag}", str(value)]
    if args.force:
        command.append("--force")
    return subprocess.run(command, env=orchestrator_env()).returncode
