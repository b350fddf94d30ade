"""Running one batch: ``predict`` on its payload, and the ack that reports how it went."""

from __future__ import annotations

import json
import time
import traceback
from typing import Any

from runtime.loader import call_by_name
from runtime.protocol import MAX_RESULT_BYTES


class ResultTooLarge(Exception):
    """A batch's result is too large to send to the orchestrator; the batch fails."""


def run_batch(predictor: Any, task: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Run ``predict`` on one leased batch; return its ack and the size of its result's JSON.

    The ack carries the batch's lease token back. An exception in ``predict`` (or a
    result too large to send) becomes a failed ack with its traceback; the orchestrator
    retries or fails the batch.
    """
    started = time.perf_counter()
    try:
        # The predictor's batch_id is the batch's index in the job, as logs and ledger show it.
        result = call_by_name(
            predictor.predict, {"payload": task["payload"], "batch_id": str(task["index"])}
        )
        encoded, size = _encoded(result)
        ack = {**lease_of(task), "duration": time.perf_counter() - started, "result": encoded}
        return ack, size
    except Exception as e:
        print(f"predict raised {type(e).__name__}: {e} (attempt {task.get('attempt')})")
        return {
            **lease_of(task),
            "duration": time.perf_counter() - started,
            "error": f"{type(e).__name__}: {e}",
            "traceback": traceback.format_exc(),
        }, 0


def lease_of(batch: dict[str, Any]) -> dict[str, Any]:
    """Return the batch's id and the lease token that proves this worker was handed it."""
    return {"batch_id": batch["batch_id"], "lease": batch["lease"]}


def _encoded(result: Any) -> tuple[Any, int]:
    """Return ``result`` as plain JSON values and the size of its JSON text."""
    if result is None:
        return None, 0
    try:
        text = json.dumps(result, default=_plain, allow_nan=False)
    except ValueError as e:  # NaN or Infinity: JSON has no way to say them
        raise ValueError(
            f"predict returned a value JSON cannot carry ({e}): return None, or a number"
            " or string in its place"
        ) from None
    if len(text) > MAX_RESULT_BYTES:
        raise ResultTooLarge(
            f"predict returned {len(text) / 2**20:.1f} MiB of JSON for this batch, over the"
            f" {MAX_RESULT_BYTES >> 20} MiB limit per batch: return less per batch (a smaller"
            " batch_size), or write large outputs to files and return their paths"
        )
    return json.loads(text), len(text)


def _plain(value: Any) -> Any:
    """Turn numpy/torch values into plain JSON ones; anything else is an error."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"predict returned a {type(value).__name__}, which is not JSON-serialisable")
