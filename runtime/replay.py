"""``python -m runtime.replay SPEC [--item N] [--pdb]``: run one batch of a job again, here.

``SPEC`` is a JSON file holding what ``GET /_cortex/apis/<api>/jobs/<job>/batches/<i>/replay``
answers; ``cortex-tui replay`` writes it, and it is deleted once read. The predictor is
loaded from the snapshot the job ran, with the loader workers use, constructed with the
job's merged config and ``job_spec``, and ``predict`` is called on the batch's exact payload
(or on a one-item list of item ``N``, a job-wide item index) in the working directory a
worker has, the snapshot. The caller sets the environment (the API's ``predictor.env``).

The result goes to stdout as one JSON document, and nothing else does: what the predictor
prints goes to stderr. A failure prints its traceback to stderr; with ``--pdb`` the
debugger then opens where the exception was raised (post-mortem). Exit status: 0 when
``predict`` returned, 1 when it raised (or returned what JSON cannot carry), 2 when the
predictor could not be loaded or constructed, or the arguments are wrong.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pdb
import sys
import traceback
from pathlib import Path
from types import TracebackType
from typing import Any

from runtime.batch import _encoded
from runtime.errors import WorkerError
from runtime.loader import call_by_name, construct, load_predictor_class

EXIT_OK, EXIT_FAILED, EXIT_LOAD_ERROR = 0, 1, 2


class ReplayError(Exception):
    """The spec or the arguments cannot make a replay (the message says why)."""


def main(argv: list[str] | None = None) -> int:
    """Replay the batch a spec file describes; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m runtime.replay", description=__doc__)
    parser.add_argument("spec", type=Path, help="the replay route's answer, as a JSON file")
    parser.add_argument("--item", type=int, metavar="N", help="replay only item N of the job")
    parser.add_argument("--pdb", action="store_true", help="debug the exception post-mortem")
    parser.add_argument("--keep-spec", action="store_true", help="do not delete SPEC once read")
    args = parser.parse_args(argv)
    try:
        spec = read_spec(args.spec, keep=args.keep_spec)
        payload = select_payload(spec, args.item)
    except ReplayError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_LOAD_ERROR
    print(describe(spec, args.item), file=sys.stderr)
    os.chdir(spec["project_dir"])  # a worker's working directory: predictors open files there
    try:
        with contextlib.redirect_stdout(sys.stderr):
            predictor = load(spec)
    except WorkerError as e:
        print(f"the predictor did not load: {e}", file=sys.stderr)
        _debug(args.pdb, e.__cause__ or e)
        return EXIT_LOAD_ERROR
    return run_predict(predictor, spec, payload, args.pdb)


def read_spec(path: Path, keep: bool = False) -> dict[str, Any]:
    """Return the spec a file holds; delete the file unless ``keep``."""
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ReplayError(f"{path}: cannot read a replay spec from it ({e})") from None
    finally:
        if not keep:
            with contextlib.suppress(OSError):
                path.unlink()
    if not isinstance(spec, dict) or not {"project_dir", "predictor", "payload"} <= set(spec):
        raise ReplayError(f"{path}: not a replay spec (the replay route's answer)")
    if not Path(spec["project_dir"]).is_dir():
        raise ReplayError(
            f"the snapshot {spec['project_dir']} is not on this machine: replay where the"
            " orchestrator's home is"
        )
    return spec


def select_payload(spec: dict[str, Any], item: int | None) -> Any:
    """Return the batch's payload, or a one-item list of job-wide item ``item``."""
    payload = spec["payload"]
    if item is None:
        return payload
    first, size = int(spec.get("first_item", 0)), len(payload)
    if not first <= item < first + size:
        span = f"item {first}" if size == 1 else f"items {first} to {first + size - 1}"
        raise ReplayError(
            f"--item {item}: batch {spec.get('batch_index')} holds {span} (job-wide item"
            " indices, as results and the failed ledger show them)"
        )
    return [payload[item - first]]


def describe(spec: dict[str, Any], item: int | None) -> str:
    """Return the line that says what is replayed, from where, and how it went before."""
    what = f"batch {spec.get('batch_index')}" + ("" if item is None else f", item {item},")
    text = (
        f"replaying {what} of job {spec.get('job_id')} (api {spec.get('api_name')} version"
        f" {spec.get('api_id')}) from {spec['project_dir']}"
    )
    before = _BEFORE.get(str(spec.get("state")), "")
    if spec.get("state") == "failed":
        before = f"it failed with {spec.get('error')}"
    return f"{text}; on its worker {before}" if before else text


#: How a batch went on its worker, by its state (a failed one also says its error).
_BEFORE = {
    "succeeded": "it succeeded",
    "split": "it failed, and isolate_failures split it to find the failing items",
    "queued": "it has not run yet",
    "leased": "it is running now",
}


def load(spec: dict[str, Any]) -> Any:
    """Load and construct the predictor as a worker does (``WorkerError`` if it cannot)."""
    predictor = spec["predictor"]
    path = predictor["path"]
    cls = load_predictor_class(Path(spec["project_dir"]), path, predictor.get("python_path"))
    return construct(cls, spec.get("config") or {}, spec.get("job_spec") or {}, path)


def run_predict(predictor: Any, spec: dict[str, Any], payload: Any, debug: bool) -> int:
    """Call ``predict`` as a worker does; print its result, or its traceback (and debug)."""
    batch_id = str(spec.get("batch_index", 0))
    try:
        with contextlib.redirect_stdout(sys.stderr):
            result = call_by_name(predictor.predict, {"payload": payload, "batch_id": batch_id})
            encoded, _ = _encoded(result)
    except Exception as e:
        traceback.print_exc()
        _debug(debug, e)
        return EXIT_FAILED
    sys.stdout.write(json.dumps(encoded) + "\n")
    sys.stdout.flush()
    return EXIT_OK


def _debug(debug: bool, error: BaseException) -> None:
    """Open the debugger where ``error`` was raised, if asked to."""
    tb: TracebackType | None = error.__traceback__
    if debug and tb is not None:
        sys.stderr.flush()
        pdb.post_mortem(tb)


if __name__ == "__main__":
    sys.exit(main())
