"""The HTTP API under load: many submitters and status readers, then abandoned log followers.

load
    One job keeps 8 workers busy (batches of 50 ms) while 50 submitter threads (quick: 20),
    each with its own connection, submit 10 small jobs each (quick: 5; 4 items in 2 batches,
    1 worker) back to back, and 4 reader threads read the busy job's status
    (``GET /bench/<job_id>``) in a loop until the submitters are done. Measured: the latency of
    every submit and every status read (count, p50, p99, max) and every error: an answer other
    than 2xx (kept with its body), a timeout or a transport error.
followers
    One job runs on 2 workers that print nothing. Status latency from 50 sequential reads
    (quick: 30); then 100 log followers (``GET /_cortex/apis/bench/jobs/<job_id>/logs?follow=true``
    on raw sockets) wait up to 5 s for the response and its first log lines, stay 0.5 s more
    (idle: no new lines come), and hang up abruptly (RST); then two
    connections read the status back to back: one starting reads for 2 s after the hang-up
    ("immediately"), one from 2 s after it ("after": 50 reads, quick 30, and on until the
    server answers normally), so that a first read that hangs does not hide how the server
    does by then. Also: how long after the hang-up the server answers normally again (3 reads
    in a row, each under max(5 x the p99 before, 100 ms)). The job has a timeout, so a server
    whose followers outlive their clients gets its threads back when the job ends: the job
    status the first normal read returns then says so.

Every request has a 30 s timeout; one that runs out counts as an error, with the time it
waited (a lower bound) among the latencies. The figures hold only with no errors. Every thread
shares this one Python process (and its GIL) and the machine with the server and its workers:
latencies are what such a client sees, its own overhead included.

Usage: python benchmarks/load.py [--quick] [--only load|followers] [--out FILE]

Prints progress lines, a table, and last a ``key=value`` line.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import Any

from harness import progress
from load_common import FULL, QUICK, REQUEST_TIMEOUT_S, Report
from load_followers import bench_followers
from load_submit import bench_load

SECTIONS = ("load", "followers")
HEADLINE_KEYS = (
    "status_p50_ms",
    "status_p99_ms",
    "submit_p50_ms",
    "submit_p99_ms",
    "followers_status_p99_ms_after",
    "load_errors",
    "followers_recovered_s",
)


# ---------------------------------------------------------------------------------- load


# ----------------------------------------------------------------------------- followers


# ---------------------------------------------------------------------------------- main


def table(report: Report) -> str:
    """Return the measured rows as a fixed-width table."""
    lines = [
        f"{'section':<10} {'requests':<40} {'n':>6} {'p50 ms':>9} {'p99 ms':>9}"
        f" {'max ms':>9} {'errors':>6} {'timeouts':>8}"
    ]
    for section, what, s in report.rows:
        lines.append(
            f"{section:<10} {what:<40} {s.count:>6} {s.p50_ms:>9.1f} {s.p99_ms:>9.1f}"
            f" {s.max_ms:>9.1f} {s.errors:>6} {s.timeouts:>8}"
        )
    return "\n".join(lines)


def describe_errors(report: Report, limit: int = 10) -> list[str]:
    """Return each distinct error once, with how often it came, most frequent first."""
    lines = []
    for section, errors in report.errors.items():
        counts: dict[str, int] = {}
        for error in errors:
            counts[error] = counts.get(error, 0) + 1
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])
        for error, count in ranked[:limit]:
            lines.append(f"{section}: {count} x {error[:2000]}")
        if len(ranked) > limit:
            lines.append(f"{section}: ... and {len(ranked) - limit} more distinct errors")
    return lines


def headline(figures: dict[str, float]) -> str:
    """Return the headline figures as ``key=value`` pairs (``na`` when not measured)."""
    pairs = []
    for key in HEADLINE_KEYS:
        value = figures.get(key)
        if value is None or math.isnan(value):
            pairs.append(f"{key}=na")
        elif isinstance(value, int):
            pairs.append(f"{key}={value}")
        else:
            pairs.append(f"{key}={value:.2f}")
    return " ".join(pairs)


def _finite(value: Any) -> Any:
    """Return ``value`` with every NaN (a figure not measured) replaced by None, for JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts (about a minute)")
    parser.add_argument("--only", choices=SECTIONS, help="run only this section")
    parser.add_argument("--out", type=Path, help="write the figures and errors here as JSON")
    return parser.parse_args(argv)


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    """Turn SIGTERM into KeyboardInterrupt so that every orchestrator is stopped."""
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Run the sections, print the table and errors, write ``--out``, print the headline.

    Exits 1 when a request failed otherwise than by a timeout (an answer other than 2xx).
    """
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    sizes = QUICK if args.quick else FULL
    sections = [args.only] if args.only else list(SECTIONS)
    runners = {"load": bench_load, "followers": bench_followers}
    report = Report()
    progress(f"load benchmark ({'quick' if args.quick else 'full'}): {', '.join(sections)}")
    try:
        for name in sections:
            started = time.monotonic()
            runners[name](sizes, report)
            progress(f"{name}: done in {time.monotonic() - started:.1f}s")
    except KeyboardInterrupt:
        progress("interrupted: every orchestrator and worker was stopped")
        return 130
    print(table(report))
    for line in report.notes + describe_errors(report):
        print(line)
    errors = [e for section in report.errors.values() for e in section]
    if errors:
        print(
            f"{len(errors)} errors: the figures of a row with errors are not valid, or (when"
            f" only timeouts) a lower bound: a timeout counts with the {REQUEST_TIMEOUT_S:g}s"
            " it waited"
        )
    if args.out is not None:
        out = {"sizes": asdict(sizes), **asdict(report)}
        out["rows"] = [{"section": s, "what": w, **asdict(x)} for s, w, x in report.rows]
        args.out.write_text(json.dumps(_finite(out), indent=2, default=str) + "\n")
        progress(f"wrote {args.out}")
    print(headline(report.figures), flush=True)
    # Timeouts after the followers are what that section measures; anything else is a failure.
    return 1 if [e for e in errors if not e.startswith("timeout")] else 0


if __name__ == "__main__":
    sys.exit(main())
