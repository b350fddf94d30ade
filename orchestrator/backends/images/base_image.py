"""Build the default worker base image offline: Debian packages plus wheels fetched here.

``python -m orchestrator.backends.images.base_image`` (run by ``cortex-tui image build-base``)
needs no registry: ``mmdebstrap`` writes a minimal Debian bookworm root filesystem with
``python3`` (3.11) as a tarball, ``pip download`` fetches pip's wheel on the host (the
worker runtime itself needs only the standard library; pip installs an API's
requirements), and one ``docker build`` turns both into an image
with an unprivileged ``cortex`` user. The image is tagged by a hash of this recipe, so it
is built once per machine and reused until the recipe changes.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("python3", "ca-certificates")
WORKER_UID = 10001
_DOCKERFILE = f"""\
FROM scratch
ADD rootfs.tar /
COPY wheels /tmp/wheels
RUN rm -f /usr/lib/python3*/EXTERNALLY-MANAGED \\
 && set -- /tmp/wheels/pip-*.whl \\
 && python3 "$1/pip" install --no-index --find-links /tmp/wheels \\
      --no-cache-dir --disable-pip-version-check --root-user-action=ignore {{requirements}} \\
 && rm -rf /tmp/wheels \\
 && useradd --uid {WORKER_UID} --user-group --create-home --shell /usr/sbin/nologin cortex
ENV LANG=C.UTF-8 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
LABEL cortex-tui.image=base
CMD ["python3"]
"""
# Keep the image small: no manuals, docs or translations.
_DPKG_EXCLUDES = (
    "/usr/share/man/*",
    "/usr/share/doc/*",
    "/usr/share/locale/*",
    "/usr/share/info/*",
)


class BaseImageError(Exception):
    """The base image could not be built; the message says which step and why."""


def worker_requirements() -> list[str]:
    """Return the pinned packages a base image needs: this host's pip (for requirements.txt)."""
    return [f"pip=={importlib.metadata.version('pip')}"]


def default_tag() -> str:
    """Return the tag of the base image this recipe builds (a hash of the recipe)."""
    recipe = "\n".join([_DOCKERFILE, SUITE, *PACKAGES, *_DPKG_EXCLUDES, *worker_requirements()])
    digest = hashlib.sha256(recipe.encode()).hexdigest()[:12]
    return f"cortex-tui/base:{SUITE}-py3.11-{digest}"


def cache_dir() -> Path:
    """Return this user's cache folder (``$XDG_CACHE_HOME/cortex-tui``, ``~/.cache/...``)."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "cortex-tui"


@contextlib.contextmanager
def one_build_at_a_time() -> Iterator[None]:
    """Hold this user's base-image build lock (another orchestrator or CLI may be building)."""
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "base-image.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build_base(
    tag: str | None = None,
    mirror: str = MIRROR,
    wheels: Path | None = None,
    force: bool = False,
    say: Callable[[str], None] = print,
) -> str:
    """Build the base image unless it exists; return its tag.

    Raises:
        BaseImageError: A tool is missing, or a step failed (its output is in the message).
    """
    import docker
    import docker.errors

    tag = tag or default_tag()
    with contextlib.closing(docker.from_env()) as client, one_build_at_a_time():
        if not force:
            try:
                client.images.get(tag)
                say(f"base image {tag} is already built")
                return tag
            except docker.errors.ImageNotFound:
                pass
        if shutil.which("mmdebstrap") is None:
            raise BaseImageError(
                "mmdebstrap is not installed: install it (apt-get install mmdebstrap) and run"
                " this again as root"
            )
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="cortex-base-") as tmp:
            context = Path(tmp)
            _fetch_wheels(context / "wheels", wheels, say)
            _bootstrap(context / "rootfs.tar", mirror, say)
            requirements = " ".join(f"'{r}'" for r in worker_requirements())
            (context / "Dockerfile").write_text(_DOCKERFILE.format(requirements=requirements))
            say(f"building {tag} ...")
            _docker_build(client.api, context, tag, say)
        say(f"built base image {tag} in {time.monotonic() - started:.0f}s")
        return tag


def _fetch_wheels(dest: Path, given: Path | None, say: Callable[[str], None]) -> None:
    if given is not None:
        say(f"using the wheels in {given}")
        shutil.copytree(given, dest)
        return
    say(f"downloading wheels: {', '.join(worker_requirements())}")
    _run(
        [
            *(sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:"),
            *("--dest", str(dest), *worker_requirements()),
        ],
        "pip download",
    )


def _bootstrap(tarball: Path, mirror: str, say: Callable[[str], None]) -> None:
    say(f"bootstrapping Debian {SUITE} ({', '.join(PACKAGES)}) from {mirror} with mmdebstrap")
    command = ["mmdebstrap", "--variant=minbase", "--format=tar", "--skip=output/dev"]
    command += [f"--include={','.join(PACKAGES)}"]
    command += [f"--dpkgopt=path-exclude={pattern}" for pattern in _DPKG_EXCLUDES]
    command += ["--customize-hook=rm -rf $1/var/lib/apt/lists/* $1/var/cache/apt/*"]
    _run([*command, SUITE, str(tarball), mirror], "mmdebstrap")


def _docker_build(api: Any, context: Path, tag: str, say: Callable[[str], None]) -> None:
    output: list[str] = []
    for chunk in api.build(path=str(context), tag=tag, rm=True, forcerm=True, decode=True):
        if "error" in chunk:
            tail = "\n".join(output[-20:])
            raise BaseImageError(f"docker build of {tag} failed: {chunk['error'].strip()}\n{tail}")
        line = str(chunk.get("stream", "")).rstrip()
        output.extend(line.splitlines())
        if line.startswith("Step "):
            say(f"  {line}")


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
        raise BaseImageError(f"{what} failed (exit {result.returncode}):\n{tail}")


def main(argv: list[str] | None = None) -> int:
    """Parse flags, build the base image, and return the exit status."""
    parser = argparse.ArgumentParser(
        prog="cortex-tui image build-base",
        description="Build the docker backend's default worker base image offline, from Debian"
        " packages (mmdebstrap) and wheels downloaded on this host. Needs root (or working"
        " user namespaces for mmdebstrap) and a Docker engine.",
    )
    parser.add_argument("--tag", help=f"image tag (default: {default_tag()})")
    parser.add_argument("--mirror", default=MIRROR, help=f"Debian mirror (default: {MIRROR})")
    parser.add_argument(
        "--wheels", type=Path, help="a directory of wheels to use instead of pip download"
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if the tag exists")
    args = parser.parse_args(argv)
    try:
        build_base(args.tag, args.mirror, args.wheels, args.force)
    except BaseImageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
