"""The one small interface every backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.settings import Settings


@dataclass(frozen=True)
class WorkerLaunch:
    """Everything a backend needs to start one worker."""

    worker_id: str
    job_id: str
    api_name: str
    slot: int
    #: How the worker reaches the orchestrator (``runtime.transport``): an http(s):// URL, or
    #: an sqs:// description of its job's queues.
    transport: str
    project_dir: Path
    api_spec: dict[str, Any]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    #: The job's timeout: a backend whose workers need a time limit of their own uses it.
    timeout_s: float | None = None


@dataclass(frozen=True)
class WorkerProbe:
    """What a backend observed of one worker."""

    alive: bool
    exit_code: int | None = None
    oom: bool = False
    message: str | None = None
    #: When it ended (epoch seconds), where the backend knows.
    ended_at: float | None = None
    #: The backend sees it starting (a remote worker's container is being started or runs
    #: but has not reported yet): it counts as initializing rather than pending.
    starting: bool = False


class Backend(ABC):
    """Starts, observes and stops a job's workers.

    Required operations are abstract; optional ones have safe defaults.
    """

    name: str = ""
    #: Whether its workers use a queue transport (they cannot reach the orchestrator).
    remote: bool = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def prepare_api(self, api_spec: dict[str, Any], project_dir: Path) -> dict[str, Any] | None:
        """Make an API version runnable (build or verify its image); no-op by default.

        What it returns (e.g. the image and whether it was built) joins the deploy response.
        """
        return None

    def active_builds(self) -> list[dict[str, Any]]:
        """Return the image builds in progress (``image``, ``step``); none by default."""
        return []

    def check_job(self, api_spec: dict[str, Any]) -> None:  # noqa: B027
        """Raise ``InvalidRequest`` when a job of this API cannot run here."""

    @abstractmethod
    def start_worker(self, launch: WorkerLaunch) -> dict[str, Any]:
        """Start a worker and return the handle to find it again (stored as JSON)."""

    @abstractmethod
    def probe_worker(self, handle: dict[str, Any]) -> WorkerProbe:
        """Return whether the worker is alive, or how it ended."""

    @abstractmethod
    def stop_worker(self, handle: dict[str, Any], grace_s: float) -> None:
        """Ask the worker to stop, and force it after ``grace_s``; must not block."""

    def find_leftovers(self) -> list[dict[str, Any]]:
        """Return handles (with ``worker_id``) of workers this home started that still run."""
        return []

    def discard_worker(self, handle: dict[str, Any]) -> None:
        """Remove a worker the store does not know (started just before a crash)."""
        self.stop_worker(handle, 0.0)

    def unused_images(self, in_use: list[tuple[str, dict[str, Any], Path]]) -> list[dict[str, Any]]:
        """Return the images this home built that no API version of ``in_use`` (API name,
        spec, snapshot) runs from, each as ``image`` and ``bytes``; none by default."""
        return []

    def remove_image(self, image: str) -> str | None:
        """Remove one of ``unused_images``; return why it could not be (in use), else None."""
        return None

    def close(self) -> None:  # noqa: B027
        """Release what the backend holds (threads, clients)."""
