"""The benchmark suite: dispatch, efficiency, submit, scale and status, against a real orchestrator.

Usage::

    python benchmarks/run.py                 # full sizes (long: the scale section runs 1M batches)
    python benchmarks/run.py --quick         # small sizes, under about 2 minutes on 2 cores
    python benchmarks/run.py --only dispatch status --out /tmp/bench

Sections, each on fresh orchestrators with temporary homes (``harness.py``): dispatch, scale
and status push no-op batches through (``throughput.py``); efficiency (against
``multiprocessing.Pool`` and Ray Data, ``baselines.py``) and submit time realistic work
(``workloads.py``). ``plan.py`` holds the sizes of the full, quick and test runs.

Writes ``<out>/<full|quick>.json``, ``.md`` and ``scale-<full|quick>.png`` (``report.py``);
prints one progress line per measurement and, last, every figure as ``key=value`` pairs.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from types import FrameType

import report
from harness import progress
from plan import FULL, QUICK, TINY, Figures, Options, Results
from throughput import bench_dispatch, bench_scale, bench_status
from workloads import bench_efficiency, bench_submit

SECTIONS = ("dispatch", "efficiency", "submit", "scale", "status")
# The keys the last line always carries ("na" when not measured).
HEADLINE_KEYS = (
    "efficiency_vs_pool",
    "efficiency_vs_ray",
    "steady_vs_ray",
    "dispatch_bps_4w",
    "dispatch_e2e_bps_4w",
    "submit_10mb_s",
    "rss_1m_mb",
    "status_p99_ms",
    "scale_slope",
)

SECTION_RUNNERS: dict[str, Callable[[Options, Results], None]] = {
    "dispatch": bench_dispatch,
    "efficiency": bench_efficiency,
    "submit": bench_submit,
    "scale": bench_scale,
    "status": bench_status,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (about 2 minutes)")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=SECTIONS,
        metavar="SECTION",
        help=f"run only these sections ({', '.join(SECTIONS)})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent / "results",
        help="where to write the report (default: benchmarks/results)",
    )
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray Data baseline")
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # for tests
    return parser.parse_args(argv)


def headline(figures: Figures) -> str:
    """Return every figure as ``key=value`` pairs, the headline keys first."""
    keys = list(HEADLINE_KEYS) + [k for k in figures if k not in HEADLINE_KEYS]
    return " ".join(f"{key}={report.format_value(figures.get(key))}" for key in keys)


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    """Turn SIGTERM into KeyboardInterrupt so that every orchestrator is stopped."""
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Run the chosen sections, write the report, and print the key=value line last."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started ignoring it
    mode = "quick" if args.quick or args.tiny else "full"
    sizes = TINY if args.tiny else QUICK if args.quick else FULL
    options = Options(sizes, use_ray=not args.no_ray)
    sections = args.only or list(SECTIONS)
    results = Results()
    started = time.perf_counter()
    progress(f"benchmarks ({mode}): {', '.join(sections)}; {report.machine_line()}")
    try:
        for name in sections:
            section_started = time.perf_counter()
            try:
                SECTION_RUNNERS[name](options, results)
            except Exception as e:  # report the section as failed and go on with the rest
                results.failed.append(name)
                progress(f"{name}: FAILED: {e}")
                traceback.print_exc()
            progress(f"{name}: done in {time.perf_counter() - section_started:.1f}s")
    except KeyboardInterrupt:
        progress("interrupted: every orchestrator and worker was stopped")
        return 130
    wall = time.perf_counter() - started
    results.figures["bench_wall_s"] = wall
    written = report.write(
        args.out,
        mode,
        results.figures,
        results.scale,
        {"sections": sections, "sizes": asdict(sizes), "failed": results.failed},
    )
    progress(f"wrote {', '.join(str(p) for p in written)} in {wall:.1f}s total")
    if results.failed:
        progress(f"failed sections: {', '.join(results.failed)}")
    print(headline(results.figures), flush=True)
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())
