"""Server settings are refused at start when the server could not run with them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from orchestrator.__main__ import apply_overrides
from orchestrator.http.server import check_start
from orchestrator.settings import InvalidSetting, Settings


def started_with(tmp_path: Path, *pairs: str, backend: str = "process") -> None:
    """Check the settings ``--set PAIR...`` gives, as the server does before it starts."""
    check_start(apply_overrides(Settings(home=tmp_path, backend=backend), list(pairs)))


def test_an_unknown_backend_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(InvalidSetting) as refused:
        started_with(tmp_path, backend="foo")

    assert (
        refused.value.message == "--backend foo: unknown backend; give one of: aws, docker, process"
    )


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["--backend", "foo"],
            "--backend foo: unknown backend; give one of: aws, docker, process",
        ),
    ],
)
def test_the_server_refuses_to_start_in_one_line_before_touching_its_home(
    tmp_path: Path, args: list[str], line: str
) -> None:
    home = tmp_path / "home"
    started = subprocess.run(
        [sys.executable, "-m", "orchestrator", "--home", str(home), "--port", "1", *args],
        capture_output=True, text=True, timeout=30,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip

    assert started.returncode == 1
    assert started.stderr.startswith(f"cortex-tui orchestrator: {line}")
    assert started.stderr.count("\n") == 1
    assert not home.exists()
