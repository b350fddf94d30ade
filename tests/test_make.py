"""The Makefile's set-up: each entry point installs what it needs, and no more.

``make -n`` prints what a target would run without running it; a fresh virtual environment
folder makes it show the set-up, as on a fresh clone.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def planned(target: str, venv: Path) -> str:
    """Return the commands ``make TARGET`` would run with a fresh virtual environment."""
    done = subprocess.run(
        ["make", "-n", target, f"VENV={venv}"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_demo_installs_only_what_the_demo_needs_and_says_so(tmp_path: Path) -> None:
    demo = planned("demo", tmp_path / "venv")

    assert "-e '.[samples]'" in demo
    assert ".[dev]" not in demo  # pytest, mypy, ruff, schemathesis, moto: the tests' tools
    assert "--quiet --disable-pip-version-check --progress-bar off -e" not in demo
    assert "installing cortex-tui and the demo's scikit-learn" in demo


def test_the_tests_install_their_tools(tmp_path: Path) -> None:
    assert "-e '.[dev]'" in planned("test", tmp_path / "venv")
