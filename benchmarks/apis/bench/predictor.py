"""The benchmarks' predictor: sleeps ``sleep_s`` per batch and stamps when it ran.

Pure standard library and silent per batch, so that it measures the system around it.
``predict`` returns ``[t_start, t_end]`` (``time.monotonic()`` at entry and exit, which
is comparable across processes on Linux), so every system's steady-state window is
computed the same way: ``max(t_end) - min(t_start)``. With ``stamp: false`` it returns
None, a pure no-op that stores no result.
"""

from __future__ import annotations

import time
from typing import Any


class PythonPredictor:
    """Sleep ``sleep_s`` seconds per batch; return the batch's start and end stamps."""

    def __init__(self, config: dict[str, Any], job_spec: dict[str, Any]) -> None:
        self.sleep_s = float(config.get("sleep_s", 0) or 0)
        self.stamp = bool(config.get("stamp", True))

    def predict(self, payload: list[Any], batch_id: str) -> list[float] | None:
        """Run one batch: sleep, then return ``[t_start, t_end]`` (or None without stamps)."""
        t_start = time.monotonic()
        if self.sleep_s > 0:
            time.sleep(self.sleep_s)
        if not self.stamp:
            return None
        return [t_start, time.monotonic()]
