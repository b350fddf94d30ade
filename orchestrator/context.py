"""The orchestrator's running state, passed to lifecycle functions and routes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from orchestrator.auth import Credentials
from orchestrator.aws import Clients
from orchestrator.backends import Backend, load_backend
from orchestrator.metrics import Telemetry
from orchestrator.settings import Settings
from orchestrator.store.engine import Store


def isoformat(ts: float | None) -> str | None:
    """Format an epoch time the way the reference does (``2020-07-16T14:56:10.276007Z``)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Context:
    """Settings, store and backends of one running orchestrator."""

    settings: Settings
    store: Store
    credentials: Credentials
    clock: Callable[[], float] = time.time
    _backends: dict[str, Backend] = field(default_factory=dict)
    _backend_lock: threading.Lock = field(default_factory=threading.Lock)
    _event_lock: threading.Lock = field(default_factory=threading.Lock)
    nudge: threading.Event = field(default_factory=threading.Event)
    #: Workers each running job wants but cannot start yet: ``max_live_workers`` is reached.
    waiting_for_cap: dict[str, int] = field(default_factory=dict)
    #: The queue transport's delivery (``delivery.sqs.SqsDelivery``), made for the first
    #: job of a remote backend (aws).
    remote: Any = None
    #: Snapshot directories a deploy is writing or preparing (prune leaves them alone).
    deploying: set[Path] = field(default_factory=set)
    snapshot_lock: threading.Lock = field(default_factory=threading.Lock)
    #: What this process measures itself: latency histograms, requests in flight.
    telemetry: Telemetry = field(default_factory=Telemetry)

    def wake(self) -> None:
        """Ask the supervisor to reconcile now rather than at its next tick."""
        self.nudge.set()

    def backend(self, name: str) -> Backend:
        """Return the backend called ``name``, loading it on first use."""
        with self._backend_lock:
            if name not in self._backends:
                self._backends[name] = load_backend(name, self.settings)
            return self._backends[name]

    @cached_property
    def aws(self) -> Clients:
        """Return the AWS clients of this orchestrator's settings (boto3 loads on first use)."""
        return Clients(self.settings)

    def loaded_backends(self) -> list[Backend]:
        """Return the backends loaded so far."""
        with self._backend_lock:
            return list(self._backends.values())

    def job_log_dir(self, job_id: str) -> Path:
        """Return the directory holding a job's logs."""
        return self.settings.logs_dir / job_id

    def log_event(self, job_id: str, message: str) -> None:
        """Append an orchestrator line to the job's logs, beside its workers' lines."""
        path = self.job_log_dir(job_id) / "orchestrator.log"
        line = f"{isoformat(self.clock())} [orchestrator] {message}\n"
        with self._event_lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as f:
                f.write(line)
