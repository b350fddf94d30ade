"""Which NVIDIA GPUs this host has, and how to split them between workers."""

from __future__ import annotations

import os
import shutil
import subprocess


def host_gpus() -> list[str]:
    """Return the device ids workers may use.

    ``CORTEX_TUI_GPUS`` (e.g. ``0,1``) wins, then the server's own
    ``CUDA_VISIBLE_DEVICES``, then what ``nvidia-smi`` lists; no GPU gives ``[]``.
    """
    for variable in ("CORTEX_TUI_GPUS", "CUDA_VISIBLE_DEVICES"):
        value = os.environ.get(variable)
        if value is not None:
            return [part.strip() for part in value.split(",") if part.strip()]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def devices_for(slot: int, per_worker: int, gpus: list[str]) -> list[str]:
    """Return the devices of worker ``slot`` when each worker asks for ``per_worker``.

    Workers get disjoint devices while the host has enough; beyond that they
    share them round-robin.
    """
    if per_worker <= 0 or not gpus:
        return []
    start = slot * per_worker
    return [gpus[(start + i) % len(gpus)] for i in range(per_worker)]
