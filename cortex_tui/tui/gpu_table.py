"""The GPUs of a job's workers, as the job view shows them under its worker stats.

Built from ``GET /_cortex/apis/<api>/jobs/<job>/workers``: each live worker's latest
samples (``gpus``), one row per device it holds.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

Json = dict[str, Any]
_LIVE = ("pending", "initializing", "running")


def gpu_rows(workers: list[Json]) -> list[tuple[str, str, str, str]]:
    """Return ``(worker, device, utilisation, memory)`` for each device of each live worker."""
    rows = []
    for worker in workers:
        if worker.get("state") not in _LIVE:
            continue
        for gpu in worker.get("gpus") or []:
            rows.append(
                (
                    str(worker.get("worker", "-")),
                    str(gpu.get("index", "-")),
                    _percent(gpu.get("utilization_pct")),
                    _memory(gpu.get("memory_used_bytes"), gpu.get("memory_total_bytes")),
                )
            )
    return rows


def gpu_table(workers: list[Json]) -> Table | None:
    """Return the table of the live workers' GPUs, or None when none reports any."""
    rows = gpu_rows(workers)
    if not rows:
        return None
    table = Table(title="worker GPUs", title_justify="left", expand=True)
    for header in ("worker", "gpu", "util", "memory used/total"):
        table.add_column(header, justify="right")
    for row in rows:
        table.add_row(*row)
    return table


def _percent(value: object) -> str:
    return f"{value:.0f}%" if isinstance(value, int | float) else "-"


def _memory(used: object, total: object) -> str:
    if not isinstance(used, int) or not isinstance(total, int) or total <= 0:
        return "-" if not isinstance(used, int) else f"{used / 2**30:.1f} GiB"
    return f"{used / 2**30:.1f}/{total / 2**30:.1f} GiB ({100 * used / total:.0f}%)"
