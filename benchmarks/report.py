"""Write the benchmark report: JSON with every figure, a markdown table, and the scale plot.

``write()`` produces ``<out>/<mode>.json`` (figures, scale points, run settings and a
description of the machine), ``<out>/<mode>.md`` (figure, value, target, met?) and
``<out>/scale-<mode>.png`` (log-log total time and orchestrator peak RSS against batches).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import baselines


@dataclass(frozen=True)
class ScalePoint:
    """One job of the scale section."""

    batches: int
    total_s: float
    rss_mb: float


@dataclass(frozen=True)
class Target:
    """What a figure should be: shown as ``text``, checked by ``met``."""

    text: str
    met: Callable[[float], bool]


TARGETS = {
    "efficiency_vs_pool": Target(">= 0.95", lambda v: v >= 0.95),
    "efficiency_vs_ray": Target("> 1 (faster)", lambda v: v > 1),
    "steady_vs_ray": Target(">= 0.9 (within 10%)", lambda v: v >= 0.9),
    "dispatch_bps_4w": Target(">= 1000", lambda v: v >= 1000),
    "submit_10mb_s": Target("< 1", lambda v: v < 1),
    "rss_1m_mb": Target("< 300", lambda v: v < 300),
    "scale_slope": Target("<= 1.1", lambda v: v <= 1.1),
}

# What each figure means, by key pattern (the first match wins).
DESCRIPTIONS = [
    (r"dispatch_e2e_bps_(\d+)w", "no-op batches/s, {0} worker(s), submit to succeeded"),
    (r"dispatch_bps_(\d+)w", "no-op batches/s, {0} worker(s), first lease to last ack"),
    (
        r"dispatch_lease_ack_(p\d+)_ms_(\d+)w",
        "lease to ack per batch as the worker sees it (prefetch wait included), {0},"
        " {1} worker(s) (ms)",
    ),
    (
        r"dispatch_overhead_us_(\d+)w",
        "{0} worker(s): worker time outside predict per batch, first lease to last ack (us)",
    ),
    (r"dispatch_startup_s_(\d+)w", "{0} worker(s): submit to first lease (s)"),
    (r"dispatch_tail_s_(\d+)w", "{0} worker(s): last ack to status_succeeded seen (s)"),
    (r"eff_ideal_s", "ideal wall time: batches x 20 ms / 4 (s)"),
    (r"eff_ours_startup_s", "ours: submit to the first predict (s)"),
    (r"eff_ours_tail_s", "ours: the last predict to status_succeeded seen (s)"),
    (r"eff_(\w+)_wall_s", "{0}: wall time, start-up included (s)"),
    (r"eff_(\w+)_steady_s", "{0}: steady window, max(t_end) - min(t_start) (s)"),
    (r"efficiency_vs_pool", "our efficiency / Pool's"),
    (r"efficiency_vs_ray", "our efficiency / Ray's, start-up included"),
    (r"steady_vs_ray", "Ray's steady window / ours"),
    (r"efficiency_(\w+)_steady", "{0}: ideal / steady window"),
    (r"efficiency_(\w+)", "{0}: ideal / wall time"),
    (r"submit_10mb_body_mb", "item_list request body (MB)"),
    (r"submit_10mb_s", "item_list: submit to HTTP response (s)"),
    (r"submit_10mb_enqueued_s", "item_list: submit to enqueued (s)"),
    (r"submit_10mb_rss_mb", "item_list: orchestrator peak RSS (MiB)"),
    (r"submit_files_mb", "delimited_files: source size (MB)"),
    (r"submit_files_s", "delimited_files: submit to enqueued (s)"),
    (r"submit_files_mb_s", "delimited_files: enqueue rate (MB/s)"),
    (r"submit_files_items_s", "delimited_files: enqueue rate (items/s)"),
    (r"submit_files_rss_idle_mb", "delimited_files: orchestrator RSS before submitting (MiB)"),
    (r"submit_files_rss_mb", "delimited_files: orchestrator peak RSS (MiB)"),
    (r"scale_slope", "log-log slope of total time against batches"),
    (r"scale_rss_slope", "log-log slope of peak RSS against batches"),
    (r"scale_top_slope", "log-log slope of total time between the two largest jobs"),
    (r"scale_(\w+)_s", "{0} no-op batches, 4 workers: submit to succeeded (s)"),
    (r"rss_(\w+)_mb", "{0} no-op batches: orchestrator peak RSS (MiB)"),
    (r"status_(p\d+)_ms", "GET job status under load, {0} (ms)"),
    (r"status_requests", "status requests measured"),
    (r"bench_wall_s", "the whole benchmark run (s)"),
]


def describe(key: str) -> str:
    """Return what a figure means, or "" for an unknown key."""
    for pattern, text in DESCRIPTIONS:
        match = re.fullmatch(pattern, key)
        if match:
            return text.format(*match.groups())
    return ""


def machine() -> dict[str, Any]:
    """Describe this machine: CPUs, their model, RAM, Python and Ray versions, the date."""
    model = ""
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    ram_kb = 0
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            ram_kb = int(line.split()[1])
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model or platform.processor() or "unknown",
        "ram_gb": round(ram_kb / 1024**2, 1),
        "python": platform.python_version(),
        "ray": baselines.ray_version() or "not installed",
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def machine_line() -> str:
    """Return the machine description on one line."""
    info = machine()
    return (
        f"{info['cpu_count']} CPUs ({info['cpu_model']}), {info['ram_gb']} GB RAM,"
        f" Python {info['python']}, Ray {info['ray']}"
    )


def write(
    out_dir: Path,
    mode: str,
    figures: dict[str, float | None],
    scale: list[ScalePoint],
    run: dict[str, Any],
) -> list[Path]:
    """Write the JSON, markdown and plot for one run; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    info = machine()
    json_path = out_dir / f"{mode}.json"
    document = {
        "mode": mode,
        "machine": info,
        "run": run,
        "figures": {key: _finite(figures.get(key)) for key in ordered_keys(figures)},
        "scale": [asdict(point) for point in scale],
    }
    json_path.write_text(json.dumps(document, indent=2) + "\n")
    md_path = out_dir / f"{mode}.md"
    md_path.write_text(markdown(mode, info, figures))
    written = [json_path, md_path]
    if len(scale) >= 2:
        try:
            written.append(plot_scale(scale, out_dir / f"scale-{mode}.png"))
        except ImportError:
            print("no scale plot: matplotlib is not installed", flush=True)
    return written


def markdown(mode: str, info: dict[str, Any], figures: dict[str, float | None]) -> str:
    """Return the report as markdown: the machine, then one table row per figure."""
    lines = [
        f"# Benchmarks ({mode})",
        "",
        f"{info['date']}: {info['cpu_count']} CPUs ({info['cpu_model']}), {info['ram_gb']} GB"
        f" RAM, Python {info['python']}, Ray {info['ray']}.",
        "",
        *(
            [
                "Quick sizes: the targets are set for the full sizes. On a job of 400 batches"
                " of 20 ms (2 s of work per worker), a fixed start-up weighs five times more"
                " than on the full run's 2,000.",
                "",
            ]
            if mode == "quick"
            else []
        ),
        "| figure | value | target | met? |",
        "| --- | ---: | --- | --- |",
    ]
    for key in ordered_keys(figures):
        value = _finite(figures.get(key))
        target = TARGETS.get(key)
        met = "" if target is None else "n/a" if value is None else _yes(target.met(value))
        what = describe(key)
        name = f"`{key}`" + (f" {what}" if what else "")
        goal = target.text if target else ""
        lines.append(f"| {name} | {format_value(value)} | {goal} | {met} |")
    return "\n".join(lines) + "\n"


def ordered_keys(figures: dict[str, float | None]) -> list[str]:
    """Return the targeted keys (measured or not) first, then the rest in measured order."""
    return list(TARGETS) + [key for key in figures if key not in TARGETS]


def format_value(value: float | None) -> str:
    """Format a figure: ``na`` when missing, else a short plain number."""
    if value is None or not math.isfinite(value):
        return "na"
    if float(value).is_integer() or abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}" if abs(value) >= 1 else f"{value:.3f}"


def plot_scale(scale: list[ScalePoint], path: Path) -> Path:
    """Plot total time and peak RSS against batches, log-log, with linear references."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batches = [p.batches for p in scale]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for axis, values, label in (
        (left, [p.total_s for p in scale], "total time, submit to succeeded (s)"),
        (right, [p.rss_mb for p in scale], "orchestrator peak RSS (MiB)"),
    ):
        axis.loglog(batches, values, "o-", label="measured")
        linear = [values[0] * b / batches[0] for b in batches]
        axis.loglog(batches, linear, "--", color="grey", label="linear from the smallest job")
        axis.set_xlabel("batches (no-op, 4 workers)")
        axis.set_ylabel(label)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    fig.suptitle("cortex-tui orchestrator: growth with job size")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _finite(value: float | None) -> float | None:
    """Return ``value``, or None when it is missing or not a finite number."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _yes(met: bool) -> str:
    return "yes" if met else "**no**"


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""
