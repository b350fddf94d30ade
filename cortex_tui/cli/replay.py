"""``cortex-tui replay API JOB_ID BATCH_INDEX``: run one batch of a job again, in this Python.

The orchestrator says what the batch needs (the route behind ``CortexClient.replay_spec``);
``python -m runtime.replay`` runs it as a child of this command, on this terminal (so that
``--pdb`` can talk to the user), with the API's ``predictor.env`` set as for a worker. The
runtime is started as a process, never imported: this package speaks HTTP only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cortex_tui.cli.connect import connect
from cortex_tui.cli.numbers import index
from cortex_tui.embedded import orchestrator_env
from cortex_tui.errors import InputError


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``replay`` to the command parsers."""
    parser = commands.add_parser(
        "replay",
        parents=[common],
        help="run one batch of a job again, here, to debug it",
        description="Load the API version the job ran (its snapshot) in this Python with the"
        " job's merged config and job_spec, run predict on the batch's exact payload, and"
        " print the result as JSON (or the traceback, exiting non-zero). What the predictor"
        " prints goes to stderr. Works for batches that succeeded too.",
    )
    parser.add_argument("api", help="the API of the job")
    parser.add_argument("job_id", help="the job id (a unique prefix, or latest)")
    parser.add_argument("batch_index", type=index, help="the batch's index in the job")
    parser.add_argument(
        "--item",
        type=index,
        metavar="N",
        help="replay only item N (its job-wide index, as results and failed show it)",
    )
    parser.add_argument(
        "--pdb", action="store_true", help="open the debugger where the exception was raised"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Fetch the batch's replay spec and run it; return the replay's exit status."""
    with connect(args) as client:
        spec = client.replay_spec(args.api, args.job_id, args.batch_index)
    spec["env"] = _collect_env(spec)
    command = [sys.executable, "-m", "runtime.replay"]
    command += [*(["--item", str(args.item)] if args.item is not None else [])]
    command += ["--pdb"] if args.pdb else []
    with _spec_file(spec) as path, _interrupts_go_to_the_child():
        return subprocess.call([*command, str(path)], env=replay_env(spec))


def _collect_env(spec: dict[str, Any]) -> dict[str, str]:
    """Read (and remove) the file the orchestrator put the API's ``predictor.env`` in: its
    values are in no answer of the server."""
    path = spec.get("env_file")
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as file:
            env: dict[str, str] = json.load(file)
    except (OSError, ValueError) as e:
        raise InputError(
            f"cannot read the API's predictor.env from {path} ({e}): replay where the"
            " orchestrator runs, as the user it runs as"
        ) from None
    with contextlib.suppress(OSError):
        os.unlink(path)
    return env


def replay_env(spec: dict[str, Any]) -> dict[str, str]:
    """Return the replay's environment: this one, the API's ``predictor.env`` on top (as a
    worker gets it), the job's ids, and the runtime on the path."""
    env = {**orchestrator_env(), **spec.get("env", {})}
    own = spec.get("env", {}).get("PYTHONPATH")
    if own:  # like a process worker: the runtime first, then the API's own path
        env["PYTHONPATH"] = os.pathsep.join([orchestrator_env()["PYTHONPATH"], own])
    env |= {
        "CORTEX_JOB_ID": str(spec.get("job_id")),
        "CORTEX_API_NAME": str(spec.get("api_name")),
        "CORTEX_WORKER_ID": "replay",
    }
    return env


@contextlib.contextmanager
def _spec_file(spec: dict[str, Any]) -> Iterator[Path]:
    """Write the spec to a private temporary file (the runtime deletes it once read)."""
    fd, name = tempfile.mkstemp(prefix="cortex-replay-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(spec, f)
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


@contextlib.contextmanager
def _interrupts_go_to_the_child() -> Iterator[None]:
    """Let Ctrl-C reach the replay (pdb, a long predict) without ending this command.

    A handler, not SIG_IGN: an ignored signal would stay ignored in the child, while a
    handled one is reset to the default there when it starts.
    """
    previous = signal.signal(signal.SIGINT, lambda _signum, _frame: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
