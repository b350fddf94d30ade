"""``cortex-tui delete API [JOB_ID]``: stop a job, or delete an API and stop its jobs."""

from __future__ import annotations

import argparse

from cortex_tui.cli.connect import connect
from cortex_tui.cli.output import add_output_option, print_json
from cortex_tui.cli.status_line import Spinner


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``delete`` to the command parsers."""
    parser = commands.add_parser(
        "delete",
        parents=[common],
        help="stop a job, or delete an API",
        description="With a job id, stop that job (results so far are kept). Without one,"
        " delete the API, stopping its running jobs.",
    )
    parser.add_argument("api", help="the API")
    parser.add_argument("job_id", nargs="?", help="the job to stop")
    add_output_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Stop the job or delete the API, and print the server's answer."""
    as_json = args.output == "json"
    with connect(args) as client:
        if args.job_id is not None:
            with Spinner(f"stopping job {args.job_id}"):
                answer = client.stop_job(args.api, args.job_id)
        else:
            if not as_json:
                print(f"deleting {args.api}", flush=True)
            answer = client.delete_api(args.api)
    if as_json:
        print_json(answer)
    else:
        print(answer.get("message", "done"))
    return 0
