"""The real Docker engine for tests: is it there, the offline base image, leftover containers.

Under ``CI=true`` an unreachable engine fails the docker tests; elsewhere they are skipped
with the reason. The base image is built once per machine (``cortex-tui image
build-base``) and found again by its tag on later runs.
"""

from __future__ import annotations

import functools
import gc
import os
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import Any

import pytest

HOME_LABEL = "cortex-tui.home"


@functools.cache
def engine_problem() -> str | None:
    """Return why the Docker engine cannot be used, or None when it answers."""
    problem = None
    with warnings.catch_warnings():
        # docker-py leaks the socket of a failed connection; collect it here, quietly.
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            import docker

            client = docker.from_env(version="1.24")
            try:
                client.ping()
            finally:
                client.close()
        except Exception as e:
            problem = f"the Docker engine is unreachable: {e}"
        gc.collect()
    return problem


def require_engine() -> None:
    """Fail (under CI=true) or skip the test when the engine is unreachable."""
    problem = engine_problem()
    if problem is None:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI=true but {problem}: docker tests must run in CI", pytrace=False)
    pytest.skip(f"{problem} (docker tests skip outside CI)")


@functools.cache
def ensure_base_image() -> str:
    """Build the offline base image unless the engine has it; return its tag."""
    from orchestrator.backends.images.base_image import (
        build_base,
        default_tag,
        one_build_at_a_time,
    )

    # Under the build lock: pytest's workers would otherwise race apt-get for dpkg's lock,
    # and the ones that lost would find no mmdebstrap.
    with one_build_at_a_time():
        if not _image_exists(default_tag()) and shutil.which("mmdebstrap") is None:
            _install_mmdebstrap()
    return build_base(say=lambda line: print(f"[base image] {line}", flush=True))


def _image_exists(tag: str) -> bool:
    import docker.errors

    c = client()
    try:
        c.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False
    finally:
        c.close()


def _install_mmdebstrap() -> None:
    """Provision a fresh Debian/Ubuntu machine (as root) with the base image's one tool."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return  # build_base then says what to install
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=False, env=env, capture_output=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "mmdebstrap"], check=False, env=env, capture_output=True
    )


def client() -> Any:
    import docker

    return docker.from_env()


def home_containers(home: Path) -> list[dict[str, Any]]:
    """Return every container (running or not) labelled with this orchestrator home."""
    c = client()
    try:
        found = c.api.containers(all=True, filters={"label": f"{HOME_LABEL}={home.resolve()}"})
    finally:
        c.close()
    return list(found)


def remove_home_containers(home: Path) -> list[str]:
    """Force-remove this home's containers; return their names."""
    found = home_containers(home)
    c = client()
    try:
        for container in found:
            c.api.remove_container(container["Id"], force=True)
    finally:
        c.close()
    return [container["Names"][0].lstrip("/") for container in found]
