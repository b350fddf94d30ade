"""The AWS benchmark's predictor: a no-op batch that says when it ran.

``predict`` returns ``time.time()`` at its start, wall-clock time, so that it compares with
the orchestrator's ``finished_time`` of the batch even when the worker runs on another
machine (AWS Batch). The folder also holds ``aws_requests.py``, baked into the worker image
with the predictor so that the worker's botocore can load it.
"""

from __future__ import annotations

import time
from typing import Any


class PythonPredictor:
    """Do nothing per batch but stamp the time."""

    def __init__(self, config: dict[str, Any], job_spec: dict[str, Any]) -> None:
        pass

    def predict(self, payload: list[Any], batch_id: str) -> float:
        """Return the wall-clock time at which this batch ran."""
        return time.time()
