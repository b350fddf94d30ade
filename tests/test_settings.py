"""Server settings are refused at start when the server could not run with them: a value
out of its range (NaN and infinities too), an unknown backend, a malformed size."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FAST, ROOT

from orchestrator.__main__ import apply_overrides
from orchestrator.http.server import check_start
from orchestrator.settings import RANGES, InvalidSetting, Settings


def started_with(tmp_path: Path, *pairs: str, backend: str = "process") -> None:
    """Check the settings ``--set PAIR...`` gives, as the server does before it starts."""
    check_start(apply_overrides(Settings(home=tmp_path, backend=backend), list(pairs)))


@pytest.mark.parametrize(
    ("pair", "allowed"),
    [
        ("isolation_max_calls_factor=NaN", "at least 0 and at most 2"),
        ("isolation_max_calls_factor=3", "at least 0 and at most 2"),
        ("visibility_timeout_s=-5", "more than 0 and at most 43200 seconds"),
        ("visibility_timeout_s=0", "more than 0 and at most 43200 seconds"),
        ("stop_grace_s=1e999", "at least 0 and at most 86400 seconds"),
        ("aws_idle_exit_s=-1", "more than 0 and at most 604800 seconds"),
        ("tick_s=0", "more than 0 and at most 60 seconds"),
        ("prefetch_window_s=inf", "at least 0 and at most 3600 seconds"),
        ("orchestrator_wait_s=-inf", "more than 0 and at most 604800 seconds"),
        ("default_retries=-1", "at least 0 and at most 100 retries"),
        ("max_body_bytes=0", "at least 1 bytes"),
        ("max_live_workers=-2", "at least 0 workers (0: sized to this host)"),
    ],
)
def test_a_value_out_of_range_is_refused_naming_setting_value_and_range(
    tmp_path: Path, pair: str, allowed: str
) -> None:
    with pytest.raises(InvalidSetting) as refused:
        started_with(tmp_path, pair)

    key, _, raw = pair.partition("=")
    value = "inf" if raw == "1e999" else raw.lower()
    assert refused.value.message.startswith(f"{key}={value}: out of range; allowed: {allowed}")


def test_a_heartbeat_as_long_as_the_visibility_timeout_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidSetting) as refused:
        started_with(tmp_path, "visibility_timeout_s=5", "heartbeat_interval_s=5")

    assert refused.value.message == (
        "heartbeat_interval_s=5: must be less than visibility_timeout_s (5), or a lease lapses"
        " between two heartbeats and its batch runs twice"
    )


def test_defaults_and_the_values_tests_and_docs_use_are_accepted(tmp_path: Path) -> None:
    started_with(tmp_path)
    started_with(tmp_path, *(f"{k}={v}" for k, v in FAST.items()))
    started_with(
        tmp_path,
        "isolation_max_calls_factor=0.5",
        "isolation_max_calls_factor=0",
        "stop_grace_s=0",
        "max_live_workers=0",
        "prefetch_window_s=30",
        "docker_shm_size=1g",
        "docker_shm_size=512m",
        backend="docker",
    )


def test_every_numeric_setting_has_a_range() -> None:
    numeric = {
        f.name
        for f in dataclasses.fields(Settings)
        if f.type in ("int", "float") and f.name != "worker_umask"  # the server sets it
    }
    assert numeric == set(RANGES)
    for name in RANGES:
        assert RANGES[name].admits(getattr(Settings(home=Path("/nowhere")), name)), name


def test_an_unknown_backend_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(InvalidSetting) as refused:
        started_with(tmp_path, backend="foo")

    assert (
        refused.value.message == "--backend foo: unknown backend; give one of: aws, docker, process"
    )


@pytest.mark.parametrize("size", ["lots", "-5m", "0", "", "nanm", "1e999g"])
def test_a_shm_size_docker_cannot_read_is_refused(tmp_path: Path, size: str) -> None:
    with pytest.raises(InvalidSetting) as refused:
        started_with(tmp_path, f"docker_shm_size={size}")

    assert refused.value.message == (
        f"docker_shm_size={size}: not a size; give a number more than 0 with b, k, m or g,"
        " e.g. 256m"
    )


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["--backend", "foo"],
            "--backend foo: unknown backend; give one of: aws, docker, process",
        ),
        (
            ["--set", "isolation_max_calls_factor=NaN"],
            "isolation_max_calls_factor=nan: out of range; allowed: at least 0 and at most 2",
        ),
        (["--port", "70000"], "port=70000: out of range; allowed: at least 1 and at most 65535"),
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
