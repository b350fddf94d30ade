"""``cortex-tui aws setup | status | teardown``: the AWS resources of this home's aws backend.

The work is done by ``python -m orchestrator.backends.aws.provision`` in its own process (this
package never imports the orchestrator), for the home the CLI uses (``CORTEX_TUI_HOME``).
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys

from cortex_tui.cli.serve import add_settings_option
from cortex_tui.embedded import home_dir, orchestrator_env

_SETTINGS_HELP = (
    "aws_region=REGION, aws_bucket=NAME (your own bucket, used as is) or aws_job_queue=NAME"
    " (your own Batch job queue, used as is); give the orchestrator the same ones"
)
_CREDENTIALS = (
    " AWS credentials, region and endpoint come from the standard chain (AWS_PROFILE,"
    " AWS_DEFAULT_REGION, AWS_ENDPOINT_URL, ~/.aws/config, ...). Exit status 2: no"
    " credentials, region or endpoint, or AWS refused a call."
)


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``aws setup``, ``aws status`` and ``aws teardown`` (they need no orchestrator)."""
    parser = commands.add_parser(
        "aws",
        help="set up, check or tear down this home's AWS resources (aws backend)",
        description="Manage the AWS resources the aws backend runs workers on, for this home"
        " (CORTEX_TUI_HOME, default ~/.cortex-tui): all named ctui-<tag> after it and tagged"
        " cortex-tui-home=<tag>.",
    )
    actions = parser.add_subparsers(dest="aws_command", metavar="ACTION", required=True)
    for add in (_add_setup, _add_status, _add_teardown):
        add(actions).set_defaults(func=run)


def _add_setup(
    actions: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add ``aws setup``; return its parser."""
    setup = actions.add_parser(
        "setup",
        help="create what is missing (safe to repeat)",
        description="Create this home's AWS resources, or finish a half-done setup: an S3"
        " bucket (job control files and spilled messages under jobs/, expiring after 7 days),"
        " an ECR repository (API images), a CloudWatch log group (worker output, 14 days),"
        " IAM roles (Batch service; task execution: pull images, write logs; job: the"
        " home's SQS queues and jobs/ objects), a managed Batch compute environment that"
        " scales to zero (Fargate; EC2 GPU instances with --gpu) and its job queue. One line"
        " per resource: created, or already there." + _CREDENTIALS,
    )
    add_settings_option(setup, _SETTINGS_HELP)
    setup.add_argument(
        "--gpu",
        action="store_true",
        help="run workers on EC2 GPU instances (g4dn, g5) instead of Fargate",
    )
    setup.add_argument(
        "--max-vcpus",
        type=_vcpus,
        metavar="N",
        help="the most vCPUs the compute environment scales to (default for a new one: 16;"
        " given for an existing one, it is changed)",
    )
    return setup


def _add_status(
    actions: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add ``aws status``; return its parser."""
    status = actions.add_parser(
        "status",
        help="say what is there and what runs",
        description="Say which of this home's AWS resources are present or missing, and what"
        " runs: Batch jobs not yet ended and the jobs' SQS queues. Exit status 1 when a"
        " resource is missing." + _CREDENTIALS,
    )
    add_settings_option(status, _SETTINGS_HELP)
    return status


def _add_teardown(
    actions: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add ``aws teardown``; return its parser."""
    teardown = actions.add_parser(
        "teardown",
        help="delete everything setup made",
        description="Delete everything setup made (the bucket with its objects, the"
        " repository with its images, the roles, the compute environment, the job queue, the"
        " log group) and the home's Batch job definitions. A bucket or job queue named by"
        " aws_bucket or aws_job_queue is kept. Refused (exit status 1) while Batch jobs of"
        " this home are active or its jobs' SQS queues exist, unless --force." + _CREDENTIALS,
    )
    add_settings_option(teardown, _SETTINGS_HELP)
    teardown.add_argument(
        "--force",
        action="store_true",
        help="terminate the home's active Batch jobs and delete its SQS queues first",
    )
    return teardown


def _vcpus(raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of vCPUs (1 or more), not {raw!r}"
        )
    return int(raw)


def run(args: argparse.Namespace) -> int:
    """Run the provisioning (part of the orchestrator package) as its own process."""
    if importlib.util.find_spec("boto3") is None:
        print(
            f"error: cortex-tui aws {args.aws_command} needs boto3, which is not installed:"
            " pip install 'cortex-tui[aws]' (or boto3)",
            file=sys.stderr,
        )
        return 2
    command = [sys.executable, "-m", "orchestrator.backends.aws.provision", args.aws_command]
    command += ["--home", str(home_dir())]
    for pair in args.overrides:
        command += ["--set", pair]
    if getattr(args, "gpu", False):
        command.append("--gpu")
    if getattr(args, "max_vcpus", None) is not None:
        command += ["--max-vcpus", str(args.max_vcpus)]
    if getattr(args, "force", False):
        command.append("--force")
    return subprocess.run(command, env=orchestrator_env()).returncode
