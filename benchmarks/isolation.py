"""The extra cost of finding a poison item (``"isolate_failures": true``).

Usage: python benchmarks/isolation.py [--items 64] [--poison 37] [--sleep-s 0.05]
                                      [--workers 1] [--repeats 3]

Starts a real orchestrator (process backend, a temporary home, worker traces on), deploys
the testbench API, and runs, ``--repeats`` times each, one batch of ``--items`` items:
clean; with one poison item (``fail_items``) and no isolation; and with the same poison
item and ``isolate_failures``. Every ``predict`` call sleeps ``--sleep-s`` whatever its
size, so a part costs as much as the whole batch (the worst case for isolation). Predict
calls are counted from the workers' traces (one record per call); wall time runs from the
submit request to the first status poll that sees the job ended (every 20 ms). Prints the
figures and ends with one ``key=value`` line.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import harness  # noqa: E402

TESTBENCH = ROOT / "sample_apis" / "testbench"
ENDED_WITH_FAILURES = "status_completed_with_failures"


def run_case(
    server: harness.Orchestrator, api: str, args: argparse.Namespace, case: str
) -> tuple[int, float, dict[str, Any]]:
    """Run one job of the case; return its predict calls, wall seconds and status."""
    config: dict[str, Any] = {"sleep_s": args.sleep_s, "echo": True}
    if case != "clean":
        config["fail_items"] = [args.poison]
    body: dict[str, Any] = {
        "workers": args.workers,
        "item_list": {"items": list(range(args.items)), "batch_size": args.items},
        "config": config,
    }
    if case == "isolated":
        body["isolate_failures"] = True
    job = server.submit(api, body)
    finished = server.wait(job)
    expected = "status_succeeded" if case == "clean" else ENDED_WITH_FAILURES
    if finished.status["status"] != expected:
        raise harness.JobFailed(f"{case}: job {job.job_id} ended {finished.status}")
    server.wait_workers_exited()  # the traces are written as workers exit
    calls = sum(1 for record in server.traces() if record["worker"].startswith(job.job_id))
    return calls, finished.elapsed_s, finished.status


def check_isolated(status: dict[str, Any], args: argparse.Namespace) -> None:
    """Insist that isolation kept every item but the poison one."""
    expected = {"succeeded": args.items - 1, "failed": 1}
    if status.get("item_metrics") != expected:
        raise harness.JobFailed(f"isolated: item_metrics {status.get('item_metrics')}")


def main() -> None:
    """Run the cases and print their figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--poison", type=int, default=37)
    parser.add_argument("--sleep-s", type=float, default=0.05)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cases = ("clean", "failed", "isolated")
    calls: dict[str, list[int]] = {case: [] for case in cases}
    walls: dict[str, list[float]] = {case: [] for case in cases}
    with harness.orchestrator(trace=True) as server:
        api = server.deploy(TESTBENCH)
        for repeat in range(args.repeats):
            for case in cases:
                n, wall, status = run_case(server, api, args, case)
                if case == "isolated":
                    check_isolated(status, args)
                calls[case].append(n)
                walls[case].append(wall)
                harness.progress(f"run {repeat + 1} {case}: {n} predict calls, {wall:.3f} s")
    report(args, calls, walls)


def report(
    args: argparse.Namespace, calls: dict[str, list[int]], walls: dict[str, list[float]]
) -> None:
    """Print each case's median calls and wall time, and isolation's extra cost."""
    print(
        f"a batch of {args.items} items, poison item {args.poison}, {args.workers} worker(s),"
        f" predict sleeps {args.sleep_s} s a call; median of {args.repeats} runs"
    )
    print(f"{'case':<10} {'predict calls':>13} {'wall s':>8}")
    median_calls = {case: int(statistics.median(values)) for case, values in calls.items()}
    median_wall = {case: statistics.median(values) for case, values in walls.items()}
    for case in calls:
        print(f"{case:<10} {median_calls[case]:>13} {median_wall[case]:>8.3f}")
    extra_calls = median_calls["isolated"] - median_calls["failed"]
    extra_wall = median_wall["isolated"] - median_wall["failed"]
    print(
        f"isolation's extra cost: {extra_calls} predict calls"
        f" ({extra_calls / args.items:.2f} per item of the batch), {extra_wall:.3f} s of wall time"
        f" ({median_wall['isolated'] / median_wall['clean']:.1f}x the clean batch's)"
    )
    print(
        f"isolation_extra_calls={extra_calls} isolation_extra_wall_s={extra_wall:.3f}"
        f" isolated_wall_s={median_wall['isolated']:.3f} clean_wall_s={median_wall['clean']:.3f}"
    )


if __name__ == "__main__":
    main()
