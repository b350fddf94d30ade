"""``cortex-tui delete API [JOB_ID]``: stop a job, or delete an API (after saying what goes
with it and asking)."""

from __future__ import annotations

import argparse
import sys

from cortex_tui import footprint
from cortex_tui.cli.confirm import confirmed
from cortex_tui.cli.connect import connect
from cortex_tui.cli.output import add_output_option, print_json
from cortex_tui.cli.status_line import Spinner
from cortex_tui.errors import InputError


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``delete`` to the command parsers."""
    parser = commands.add_parser(
        "delete",
        parents=[common],
        help="stop a job, or delete an API",
        description="With a job id, stop that job (results so far are kept). Without one,"
        " delete the API: its running jobs are stopped, and its jobs stay readable (status,"
        " results, logs) until `cortex-tui prune` or --purge removes them. It says what goes"
        " with the API and asks first.",
    )
    parser.add_argument("api", help="the API")
    parser.add_argument("job_id", nargs="?", help="the job to stop")
    parser.add_argument(
        "--purge",
        action="store_true",
        help="remove the API's jobs too, with their results and logs (also for an API"
        " deleted before)",
    )
    parser.add_argument(
        "-y", "--yes", action="store_true", help="delete without asking (for scripts)"
    )
    add_output_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Stop the job or delete the API, and print the server's answer."""
    if args.job_id is not None and args.purge:
        raise InputError(
            f"--purge removes an API's jobs and takes no job id: to stop the job, run"
            f" `cortex-tui delete {args.api} {args.job_id}`; to delete the API with its jobs,"
            f" `cortex-tui delete {args.api} --purge`"
        )
    as_json = args.output == "json"
    with connect(args) as client:
        if args.job_id is not None:
            with Spinner(f"stopping job {args.job_id}"):
                answer = client.stop_job(args.api, args.job_id)
        else:
            usage = client.api_usage(args.api)
            if usage.get("deleted_time") and not args.purge:
                raise InputError(
                    f"{args.api} was already deleted at {usage['deleted_time']}; its jobs are"
                    f" kept (remove them with: cortex-tui delete {args.api} --purge)"
                )
            said = sys.stderr if as_json else sys.stdout
            print(f"deleting {args.api}:", file=said)
            for line in footprint.deletion(usage, args.purge):
                print(f"  {line}", file=said)
            command = f"cortex-tui delete {args.api}" + (" --purge" if args.purge else "")
            if not args.yes and not confirmed(f"delete {args.api}?", command):
                return 1
            answer = client.delete_api(args.api, purge=args.purge)
    if as_json:
        print_json(answer)
    else:
        print(answer.get("message", "done"))
    return 0
