"""A configurable Batch API for tests and benchmarks: sleeps, fails, hogs memory on request.

Pure standard library so that a worker starts fast. Every key is optional and a job's config
overrides the API's (see README.md for the list).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

# Attempts per batch when no state_dir is configured; only this worker process sees them.
_LOCAL_ATTEMPTS: dict[str, int] = {}
_MISSING = object()


class PythonPredictor:
    """Echo items back, after whatever delays, failures and allocations the config asks for."""

    def __init__(self, config: dict[str, Any], job_spec: dict[str, Any]) -> None:
        self.config = dict(config or {})
        self.job_id = job_spec.get("job_id", "?")
        self.worker = os.environ.get("CORTEX_WORKER_ID")
        print(
            f"testbench init: job {self.job_id}, worker {self.worker}, config {self.config}",
            flush=True,
        )
        init_sleep_s = float(self.config.get("init_sleep_s", 0) or 0)
        if init_sleep_s > 0:
            time.sleep(init_sleep_s)
        init_fail = self.config.get("init_fail")
        if init_fail:
            raise RuntimeError(str(init_fail))

    def predict(self, payload: list[Any], batch_id: str) -> list[dict[str, Any]] | None:
        """Run one batch: hog memory, sleep, maybe fail, then echo each item."""
        config = self.config
        print(f"batch {batch_id}: {len(payload)} items", flush=True)
        if config.get("print_each"):
            for index, item in enumerate(payload):
                print(f"batch {batch_id} item {index}: {item!r}", flush=True)

        hog = _touch_memory(int(config.get("hog_mb", 0) or 0))
        if hog:
            print(f"batch {batch_id}: holding {len(hog) >> 20} MB", flush=True)
        sleep_s = float(config.get("sleep_s", 0) or 0)
        if sleep_s > 0:
            time.sleep(sleep_s)
        del hog

        fail_items = list(config.get("fail_items") or [])
        bad = next((item for item in payload if item in fail_items), _MISSING)
        if bad is not _MISSING:
            fail_times = int(config.get("fail_times", -1))
            attempt = _count_attempt(batch_id, config.get("state_dir"))
            if fail_times < 0 or attempt <= fail_times:
                print(f"batch {batch_id}: attempt {attempt} fails on item {bad!r}", flush=True)
                raise ValueError(f"item {bad!r} is in fail_items")
            print(
                f"batch {batch_id}: attempt {attempt} passes (fail_times={fail_times})", flush=True
            )

        if not config.get("echo", True):
            return None
        return [{"item": item, "worker": self.worker} for item in payload]

    def on_job_complete(self, job_summary: dict[str, Any]) -> None:
        """Record that the job completed (complete_marker), then fail if complete_fail is set."""
        line = (
            f"{job_summary['job_id']} {job_summary['succeeded']} "
            f"{job_summary['failed']} {job_summary['total']}"
        )
        print(f"job complete: {line} (job_id succeeded failed total)", flush=True)
        marker = self.config.get("complete_marker")
        if marker:
            with open(marker, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        complete_fail = self.config.get("complete_fail")
        if complete_fail:
            raise RuntimeError(str(complete_fail))


def _touch_memory(mb: int) -> bytearray:
    """Allocate `mb` MiB and write one byte per page so the memory is really resident."""
    if mb <= 0:
        return bytearray()
    size = mb << 20
    # Writing each page, not just allocating, is what makes the kernel back it with RAM.
    buf = bytearray(size)
    pages = (size + 4095) // 4096
    buf[::4096] = b"\x01" * pages
    return buf


def _count_attempt(batch_id: str, state_dir: str | None) -> int:
    """Record one more attempt at a failing batch and return its number, starting at 1.

    With a state_dir the count is shared by every worker process (one byte appended per
    attempt; O_APPEND keeps concurrent writers from losing one); without it the count only
    covers this process.
    """
    if not state_dir:
        _LOCAL_ATTEMPTS[batch_id] = _LOCAL_ATTEMPTS.get(batch_id, 0) + 1
        return _LOCAL_ATTEMPTS[batch_id]
    directory = Path(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"attempts-{re.sub(r'[^A-Za-z0-9_.-]', '_', str(batch_id))}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, b".")
    finally:
        os.close(fd)
    return path.stat().st_size
