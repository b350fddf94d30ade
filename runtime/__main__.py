"""``python -m runtime --transport URL --worker ID [--project DIR]``: run one worker."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from runtime.protocol import WORKER_SECRET_ENV
from runtime.worker import Worker


def main() -> int:
    """Parse flags and run the worker; return its exit code."""
    parser = argparse.ArgumentParser(prog="python -m runtime")
    parser.add_argument(
        "--transport",
        required=True,
        help="how to reach the orchestrator: its http(s):// URL or an sqs:// description",
    )
    parser.add_argument("--worker", required=True, help="this worker's id")
    parser.add_argument("--project", type=Path, default=Path.cwd(), help="the API's project dir")
    args = parser.parse_args()
    # The secret authenticates this worker to the orchestrator; the predictor has no use
    # for it, and its subprocesses do not inherit it.
    secret = os.environ.pop(WORKER_SECRET_ENV, "")
    if not secret:
        print(f"python -m runtime: {WORKER_SECRET_ENV} is not set", file=sys.stderr)
        return 2
    return Worker(args.transport, args.worker, secret, args.project.resolve()).run()


if __name__ == "__main__":
    sys.exit(main())
