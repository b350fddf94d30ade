"""Worker images of the docker backend: base image + runtime + requirements + project files.

The build context is one deterministic tar (sorted names, zero times and owners, files made
world-readable), so its hash, with the base image's id, names the image: an unchanged API
never rebuilds, and a change of code, requirements, runtime or base image always does.
Project files are baked in (see README, "Docker backend") after the requirements layer, so
a code-only change reuses the installed requirements from the engine's layer cache.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from orchestrator.apis.snapshot import SKIP
from orchestrator.errors import BackendError

RUNTIME_DIR = Path(__file__).resolve().parents[3] / "runtime"
APP_DIR = "/app"
RUNTIME_PARENT = "/opt/cortex-tui"
_LOG_TAIL = 25
#: Every API image is ``cortex-tui-api/<api name>:<content hash>``.
API_REPOSITORY = "cortex-tui-api"


class ImageBuildError(BackendError):
    """An API's image could not be built: a user error (bad requirements, bad base image)."""

    status_code = 400


@dataclass(frozen=True)
class ImageBuild:
    """What building (or reusing) one API image did."""

    tag: str
    built: bool
    seconds: float
    log_path: Path | None


def dockerfile(base: str, has_requirements: bool) -> str:
    """Return the Dockerfile of an API image on ``base``.

    Every step before the requirements is the same for every API on one base (the engine
    caches it); the project files come last, so a code change rebuilds one layer.
    """
    lines = [
        f"FROM {base}",
        "USER root",
        # The runtime needs only Python's standard library: any Python 3.11+ base will do.
        "RUN python3 -c 'import sys; sys.exit(sys.version_info < (3, 11) and"
        ' "cortex-tui workers need Python 3.11+ as python3 in the base image, found "'
        " + sys.version)'",
        f"WORKDIR {APP_DIR}",
        f"ENV PYTHONPATH={RUNTIME_PARENT} PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HOME=/tmp",
        "LABEL cortex-tui.image=api",
        f"COPY runtime {RUNTIME_PARENT}/runtime",
    ]
    if has_requirements:
        lines += [
            "COPY requirements.txt /tmp/cortex-requirements.txt",
            "RUN python3 -m pip install --no-cache-dir --root-user-action=ignore"
            " -r /tmp/cortex-requirements.txt",
        ]
    lines.append(f"COPY app {APP_DIR}")
    return "\n".join(lines) + "\n"


def _files(root: Path) -> Iterator[tuple[str, Path]]:
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part in SKIP for part in relative.parts) or path.suffix == ".pyc":
            continue
        # Snapshot links point inside the project (apis/snapshot.py): they go in as links.
        if path.is_symlink() or path.is_file():
            yield relative.as_posix(), path


def _add(
    tar: tarfile.TarFile, name: str, data: bytes | None = None, path: Path | None = None
) -> None:
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    if path is not None and path.is_symlink():
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
        tar.addfile(info)
    elif path is not None:
        info.size = path.stat().st_size
        if path.stat().st_mode & 0o111:
            info.mode = 0o755
        with open(path, "rb") as f:
            tar.addfile(info, f)
    else:
        assert data is not None
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def build_context(project_dir: Path, base: str) -> IO[bytes]:
    """Return a deterministic tar of the Dockerfile, the runtime and the project (at 0)."""
    requirements = project_dir / "requirements.txt"
    context: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # noqa: SIM115
    with tarfile.open(fileobj=context, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "Dockerfile", dockerfile(base, requirements.is_file()).encode())
        if requirements.is_file():
            _add(tar, "requirements.txt", path=requirements)
        for name, path in _files(RUNTIME_DIR):
            _add(tar, f"runtime/{name}", path=path)
        for name, path in _files(project_dir):
            _add(tar, f"app/{name}", path=path)
    context.seek(0)
    return context


def image_tag(api_name: str, context: IO[bytes], base_id: str) -> str:
    """Return the content-hash tag of an API image."""
    digest = hashlib.sha256(base_id.encode())
    for block in iter(lambda: context.read(1 << 20), b""):
        digest.update(block)
    context.seek(0)
    return f"{API_REPOSITORY}/{api_name}:{digest.hexdigest()[:16]}"


class ImageBuilder:
    """Builds API images once per tag, logging each build under ``logs_dir``."""

    def __init__(self, client: Any, logs_dir: Path) -> None:
        self._client = client
        self._logs_dir = logs_dir
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        #: Builds in progress: tag -> their latest output line (for progress reports).
        self.progress: dict[str, str] = {}

    def ensure(self, api_name: str, project_dir: Path, base: str) -> ImageBuild:
        """Return the API's image, building it first if the engine does not have it.

        Raises:
            ImageBuildError: The base image is missing, or the build failed.
        """
        import docker.errors

        try:
            base_id = self._client.images.get(base).id
        except docker.errors.ImageNotFound:
            raise ImageBuildError(
                f'api "{api_name}": its base image "{base}" is not on this Docker engine: build'
                " the default one with `cortex-tui image build-base`, or pull one (e.g."
                " `docker pull python:3.11-slim`) and name it in predictor.image or with"
                " `--set docker_base_image=...`"
            ) from None
        context = build_context(project_dir, base)
        tag = image_tag(api_name, context, base_id)
        with self._guard:
            lock = self._locks.setdefault(tag, threading.Lock())
        with lock:
            try:
                self._client.images.get(tag)
                context.close()
                return ImageBuild(tag, built=False, seconds=0.0, log_path=None)
            except docker.errors.ImageNotFound:
                pass
            return self._build(api_name, tag, context)

    def tag_for(self, api_name: str, project_dir: Path, base: str) -> str | None:
        """Return the tag the API version's image has (or would have); None when its
        base image is not on the engine (then nobody can say)."""
        import docker.errors

        try:
            base_id = self._client.images.get(base).id
        except docker.errors.ImageNotFound:
            return None
        with build_context(project_dir, base) as context:
            return image_tag(api_name, context, base_id)

    def build_log(self, tag: str) -> Path | None:
        """Return the log of this home's build of an API image: the mark that this home
        made it (None for any other image)."""
        repository, _, digest = tag.rpartition(":")
        api_name = repository.removeprefix(f"{API_REPOSITORY}/")
        if api_name == repository or not digest or "/" in api_name:
            return None
        log = self._logs_dir / api_name / f"{digest}.log"
        return log if log.is_file() else None

    def _build(self, api_name: str, tag: str, context: IO[bytes]) -> ImageBuild:
        import docker.errors

        log_path = self._logs_dir / api_name / f"{tag.rsplit(':', 1)[1]}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        self.progress[tag] = "starting"
        error: str | None = None
        try:
            with context, open(log_path, "w", encoding="utf-8") as log:
                log.write(f"building {tag}\n")
                stream = self._client.api.build(
                    fileobj=context,
                    custom_context=True,
                    tag=tag,
                    rm=True,
                    forcerm=True,
                    decode=True,
                    network_mode="host",  # pip reaches the index the way this host does
                )
                for chunk in stream:
                    if "error" in chunk:
                        error = _plain(str(chunk["error"])).strip()
                        log.write(f"ERROR: {error}\n")
                        break
                    text = _plain(str(chunk.get("stream", "")))
                    log.write(text)
                    log.flush()
                    if text.strip():
                        self.progress[tag] = text.strip().splitlines()[-1]
        except (OSError, docker.errors.DockerException) as e:  # translated at this edge
            error = f"{type(e).__name__}: {e}"
        finally:
            self.progress.pop(tag, None)
        if error is not None:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-_LOG_TAIL:])
            raise ImageBuildError(
                f'api "{api_name}": building its image {tag} failed: {error}\n'
                f"--- the last lines of the build log ({log_path}) ---\n{tail}"
            )
        return ImageBuild(tag, built=True, seconds=time.monotonic() - started, log_path=log_path)


#: A terminal's control sequences (pip and apt colour their output): not for a log file.
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def _plain(text: str) -> str:
    """Return build output without terminal control sequences."""
    return _ESCAPES.sub("", text)
