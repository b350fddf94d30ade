"""The benchmark harness end to end, at tiny sizes: it runs, reports, and leaves nothing behind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Keys the last line carries whatever ran; "na" when their section did not run.
HEADLINE = (
    "efficiency_vs_pool",
    "efficiency_vs_ray",
    "dispatch_bps_4w",
    "dispatch_e2e_bps_4w",
    "submit_10mb_s",
    "rss_1m_mb",
    "status_p99_ms",
    "scale_slope",
)
# Keys the dispatch and status sections always measure.
MEASURED = (
    "dispatch_e2e_bps_1w",
    "dispatch_e2e_bps_2w",
    "dispatch_e2e_bps_4w",
    "status_p50_ms",
    "status_p99_ms",
)


@pytest.mark.slow
def test_quick_dispatch_and_status(tmp_path: Path) -> None:
    """``run.py --quick --only dispatch status`` prints key=value pairs and writes its report."""
    out = tmp_path / "results"
    done = subprocess.run(
        [
            sys.executable,
            "benchmarks/run.py",
            "--quick",
            "--tiny",
            "--no-ray",
            "--only",
            "dispatch",
            "status",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    pairs = dict(pair.split("=", 1) for pair in last.split())
    for key in HEADLINE:
        assert key in pairs, last
        assert pairs[key] == "na" or float(pairs[key]) >= 0, last
    for key in MEASURED:
        assert float(pairs[key]) > 0, last
    assert pairs["submit_10mb_s"] == "na"  # its section did not run

    document = json.loads((out / "quick.json").read_text())
    assert document["figures"]["status_p99_ms"] == pytest.approx(
        float(pairs["status_p99_ms"]), rel=0.01
    )
    assert document["machine"]["cpu_count"] >= 1
    table = (out / "quick.md").read_text()
    assert "| figure | value | target | met? |" in table
    assert "`dispatch_e2e_bps_4w`" in table
