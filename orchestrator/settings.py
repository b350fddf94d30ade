"""Server settings: where state lives, how to listen, delivery timings.

Every numeric setting has a ``Range`` in ``RANGES``; ``Settings.check`` refuses a value
outside it (NaN and infinities included) before the server starts, with one line naming
the setting, the value and what is allowed.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import OrchestratorError
from runtime.protocol import DEFAULT_ORCHESTRATOR_WAIT_S

DEFAULT_PORT = 7311
DEFAULT_HOST = "127.0.0.1"


def default_home() -> Path:
    """Return ``CORTEX_TUI_HOME`` or ``~/.cortex-tui``."""
    return Path(os.environ.get("CORTEX_TUI_HOME") or Path.home() / ".cortex-tui").expanduser()


@dataclass
class Settings:
    """Everything the orchestrator needs to start; tests build one per temp home."""

    home: Path = field(default_factory=default_home)
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    backend: str = "process"
    # Delivery: a leased batch returns to the queue when its lease is not extended in time.
    visibility_timeout_s: float = 30.0
    heartbeat_interval_s: float = 5.0
    #: A worker leases about this much work at its recent pace per request (see runtime/worker.py).
    prefetch_window_s: float = 1.0
    # How often the supervisor reconciles workers, leases, timeouts and statuses.
    tick_s: float = 0.5
    # Stop: SIGTERM, then SIGKILL after this grace period.
    stop_grace_s: float = 10.0
    # How long a worker waits for an orchestrator that does not answer before it exits.
    orchestrator_wait_s: float = DEFAULT_ORCHESTRATOR_WAIT_S
    # Workers stuck in pending longer than this count as stalled.
    stalled_after_s: float = 600.0
    # Default retries for a batch whose predict raises, when the job does not say.
    default_retries: int = 0
    # How many times a job's dead workers are replaced, per requested worker.
    restarts_per_worker: int = 2
    # Jobs with "isolate_failures": the parts of one failed batch of n items get at most
    # max(ceil(factor * n), 2 * ceil(log2 n)) predict calls (orchestrator.store.isolation).
    isolation_max_calls_factor: float = 1.0
    max_body_bytes: int = 10 * 1024 * 1024
    # The Python that runs process-backend workers; the server's own by default.
    worker_python: str | None = None
    # Docker backend: the base image of API images when predictor.image is not set (default:
    # the offline one `cortex-tui image build-base` builds), the worker's user (default: this
    # user's uid:gid, or 10001:10001 when that is root), /dev/shm size, host paths to bind into
    # workers ("SRC[:DST][:ro],..."), and whether ended containers are kept for debugging.
    docker_base_image: str | None = None
    docker_user: str | None = None
    docker_shm_size: str = "256m"
    docker_mounts: str = ""
    docker_keep_containers: bool = False
    # Security and limits (README, "Security"). Host names besides loopback and the bound
    # address that requests may name ("a,b"), folders besides an API's project directory
    # that job sources may read ("/data,/mnt/shared"), the largest project a deploy copies,
    # the largest job config, and how many workers may be live across all jobs (0: sized to
    # this host's cores and memory).
    allowed_hosts: str = ""
    source_roots: str = ""
    max_project_bytes: int = 512 * 1024 * 1024
    max_config_bytes: int = 1024 * 1024
    max_live_workers: int = 0
    # The umask process workers start with: the one the orchestrator was started with (it
    # narrows its own to 077 for its home).
    worker_umask: int = 0o022
    # HTTPS: a PEM certificate and its key (both, or neither).
    tls_cert: str = ""
    tls_key: str = ""
    # AWS backend (README, "AWS backend"). The region (default: the boto3 chain's), the S3
    # bucket and Batch job queue (default: the ones `cortex-tui aws setup` names after this
    # home), where API images go ("ecr": the home's ECR repository; "": the local image tag,
    # for emulators), extra environment for workers ("K=V,K=V": an emulator's dummy keys),
    # how long an idle worker waits before it exits, how long an exit waits for the
    # worker's last events, the longest a worker may run when its job has no timeout, and
    # how long a running job waits out an AWS that does not answer before it fails.
    aws_region: str = ""
    aws_bucket: str = ""
    aws_job_queue: str = ""
    aws_image_registry: str = "ecr"
    aws_worker_env: str = ""
    aws_idle_exit_s: float = 300.0
    aws_event_grace_s: float = 30.0
    aws_max_worker_s: float = 86400.0
    aws_unreachable_grace_s: float = 600.0

    @property
    def db_path(self) -> Path:
        """Return the SQLite database path."""
        return self.home / "cortex.db"

    @property
    def logs_dir(self) -> Path:
        """Return the directory of per-job, per-worker logs."""
        return self.home / "logs"

    @property
    def apis_dir(self) -> Path:
        """Return the directory of deployed API snapshots."""
        return self.home / "apis"

    @property
    def builds_dir(self) -> Path:
        """Return the directory of image build logs."""
        return self.home / "builds"

    @property
    def url(self) -> str:
        """Return the URL workers and clients use to reach this server."""
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if self.tls_cert else "http"
        return f"{scheme}://{host}:{self.port}"

    @property
    def host_names(self) -> frozenset[str]:
        """Return the ``Host`` names requests may use besides loopback ones."""
        names = {h.strip().lower() for h in self.allowed_hosts.split(",") if h.strip()}
        if self.host not in ("0.0.0.0", "::", ""):
            names.add(self.host.lower())
        return frozenset(names)

    @property
    def source_root_list(self) -> list[Path]:
        """Return the ``source_roots`` folders, resolved."""
        return [Path(p.strip()).resolve() for p in self.source_roots.split(",") if p.strip()]

    @property
    def live_worker_cap(self) -> int:
        """Return ``max_live_workers``, or a default sized to this host's cores and memory."""
        if self.max_live_workers > 0:
            return self.max_live_workers
        return default_live_workers()

    def check(self) -> None:
        """Refuse a numeric setting outside its range, or a heartbeat that lets leases lapse.

        Raises:
            InvalidSetting: The message names the setting, its value and what is allowed.
        """
        for name, allowed in RANGES.items():
            value = getattr(self, name)
            if not allowed.admits(value):
                raise InvalidSetting(
                    f"{name}={_number(value)}: out of range; allowed: {allowed.describe()}"
                )
        if self.heartbeat_interval_s >= self.visibility_timeout_s:
            raise InvalidSetting(
                f"heartbeat_interval_s={_number(self.heartbeat_interval_s)}: must be less than"
                f" visibility_timeout_s ({_number(self.visibility_timeout_s)}), or a lease"
                " lapses between two heartbeats and its batch runs twice"
            )

    def ensure_dirs(self) -> None:
        """Create the home directory tree, readable by this user only."""
        for path in (self.home, self.logs_dir, self.apis_dir):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.home, 0o700)
        for name in ("cortex.db", "cortex.db-wal", "cortex.db-shm", "server.log"):
            if (self.home / name).exists():
                os.chmod(self.home / name, 0o600)


def default_live_workers() -> int:
    """Return 4 workers per core, at most one per 256 MiB of memory, and at least 2."""
    cores = os.cpu_count() or 1
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        memory = 0
    by_memory = memory // (256 * 1024 * 1024) if memory else 4 * cores
    return max(2, min(4 * cores, by_memory))


class InvalidSetting(OrchestratorError):
    """A setting the server cannot run with (the message names it and what is allowed)."""


@dataclass(frozen=True)
class Range:
    """The finite values a numeric setting may take: ``low`` (itself too unless
    ``above_low``) up to ``high``, in ``unit``; ``note`` says why, where it is not plain."""

    low: float
    high: float = math.inf
    unit: str = "seconds"
    above_low: bool = False
    note: str = ""

    def admits(self, value: float) -> bool:
        """Return whether ``value`` is finite and within the range."""
        if not math.isfinite(value) or value > self.high:
            return False
        return value > self.low if self.above_low else value >= self.low

    def describe(self) -> str:
        """Return the range in words: ``more than 0 and at most 43200 seconds (...)``."""
        low = (
            f"more than {_number(self.low)}" if self.above_low else f"at least {_number(self.low)}"
        )
        high = f" and at most {_number(self.high)}" if math.isfinite(self.high) else ""
        unit = f" {self.unit}" if self.unit else ""
        note = f" ({self.note})" if self.note else ""
        return f"{low}{high}{unit}{note}"


_DAY = 24 * 3600
_WEEK = 7 * _DAY

#: What each numeric setting may be. Durations that divide or schedule are more than 0;
#: a week bounds the long ones (a larger value overflows where it becomes a timeout).
RANGES: dict[str, Range] = {
    "port": Range(1, 65535, unit=""),
    "visibility_timeout_s": Range(
        0, 12 * 3600, above_low=True, note="12 h is the longest SQS visibility timeout"
    ),
    "heartbeat_interval_s": Range(0, 12 * 3600, above_low=True),
    "prefetch_window_s": Range(0, 3600),
    "tick_s": Range(0, 60, above_low=True),
    "stop_grace_s": Range(0, _DAY),
    "orchestrator_wait_s": Range(0, _WEEK, above_low=True),
    "stalled_after_s": Range(0, _WEEK, above_low=True),
    "default_retries": Range(0, 100, unit="retries", note="as a job's own retries"),
    "restarts_per_worker": Range(0, 100, unit="restarts"),
    "isolation_max_calls_factor": Range(
        0, 2, unit="", note="above 2 changes nothing: a whole search takes at most 2n - 2 calls"
    ),
    "max_body_bytes": Range(1, unit="bytes"),
    "max_project_bytes": Range(1, unit="bytes"),
    "max_config_bytes": Range(1, unit="bytes"),
    "max_live_workers": Range(0, unit="workers", note="0: sized to this host"),
    "aws_idle_exit_s": Range(0, _WEEK, above_low=True),
    "aws_event_grace_s": Range(0, _DAY),
    "aws_max_worker_s": Range(0, _WEEK, above_low=True),
    "aws_unreachable_grace_s": Range(0, _WEEK),
}


def _number(value: float) -> str:
    """Return ``value`` as a user writes it: ``-5``, ``0.5``, ``nan``, ``inf``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
