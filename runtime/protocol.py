"""The worker protocol's vocabulary: what both sides of the wire say, in one place.

The runtime owns it (standard library only); the orchestrator imports it, and nothing
else of the runtime. A worker asks for its spec, reports its state, asks for the next
task (carrying its acks), extends its leases by heartbeat, and reports how
``on_job_complete`` went: see ``runtime.transport.Transport``.
"""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum

#: The environment variable a worker finds its own secret in.
WORKER_SECRET_ENV = "CORTEX_WORKER_SECRET"
#: The environment variable naming the orchestrator's uid: a worker sends its secret only
#: to a loopback listener of that uid.
SERVER_UID_ENV = "CORTEX_SERVER_UID"
#: The environment variable an HTTPS orchestrator's certificate (PEM) is handed over in.
SERVER_CERT_ENV = "CORTEX_SERVER_CERT"
#: The environment variable telling a worker how long to wait for an orchestrator that does
#: not answer before it gives up and exits (seconds).
ORCHESTRATOR_WAIT_ENV = "CORTEX_ORCHESTRATOR_WAIT_S"
#: How long a worker waits for its orchestrator when it is told nothing (the
#: orchestrator hands its ``orchestrator_wait_s`` setting over in ``ORCHESTRATOR_WAIT_ENV``).
DEFAULT_ORCHESTRATOR_WAIT_S = 600.0
#: The environment variable a queue-transport worker finds its job's key in: what the
#: orchestrator writes for the job (work messages, spec, control) is signed with it.
JOB_KEY_ENV = "CORTEX_JOB_KEY"

#: The largest request a worker may send (its acks and their results) ...
MAX_REQUEST_BYTES = 64 << 20
#: ... so one batch's result may be at most half of it ...
MAX_RESULT_BYTES = MAX_REQUEST_BYTES // 2
#: ... and acks go out before the results they carry pass a quarter of it.
ACK_MAX_BYTES = MAX_REQUEST_BYTES // 4
#: The most batches one lease request may ask for ...
MAX_LEASE = 1000
#: ... and the most acks or batch ids one request may carry.
MAX_LIST = 10_000


#: How often a worker holding GPUs samples them (seconds); its heartbeat carries the
#: latest samples under ``GPUS_FIELD``.
GPU_SAMPLE_INTERVAL_S = 5.0
GPUS_FIELD = "gpus"
#: The most devices one heartbeat may report.
MAX_GPUS = 64


class GpuKey(StrEnum):
    """The fields of one device's sample (each but ``index`` and ``uuid`` may be null)."""

    INDEX = "index"  # as nvidia-smi and NVML number the devices the worker sees
    UUID = "uuid"
    UTILIZATION = "utilization_pct"  # percent of the last sample period the GPU was busy
    MEMORY_USED = "memory_used_bytes"
    MEMORY_TOTAL = "memory_total_bytes"


class Task(StrEnum):
    """What the orchestrator tells a worker to do next."""

    BATCHES = "batches"  # run these leased batches (possibly none, when asked for none)
    WAIT = "wait"  # other workers hold the last batches: ask again after delay_s
    ON_JOB_COMPLETE = "on_job_complete"  # every batch finished: run the hook, once per job
    EXIT = "exit"  # nothing more for this worker


class Report(StrEnum):
    """The states a worker reports about itself."""

    INITIALIZING = "initializing"
    RUNNING = "running"
    FAILED = "failed"
    DONE = "done"


class EndReason(StrEnum):
    """Why a worker ended, as its record keeps it."""

    DONE = "done"  # said it was done and exited 0
    CRASH = "crash"  # any other end the worker did not explain
    LOAD_ERROR = "load_error"  # the predictor cannot load: retrying is pointless
    INIT_ERROR = "init_error"  # the predictor's __init__ raised
    UNREACHABLE = "orchestrator_unreachable"  # gave up waiting for the orchestrator
    OOM = "oom"  # killed for exceeding compute.mem
    START_ERROR = "start_error"  # the backend could not start it
    STOPPED = "stopped"  # ended with its job

    @property
    def is_fatal(self) -> bool:
        """Return whether a worker ending this way fails its job at once."""
        return self is EndReason.LOAD_ERROR


class HookState(StrEnum):
    """Where a job's ``on_job_complete`` is."""

    NONE = "none"  # not claimed yet
    CLAIMED = "claimed"  # one live worker is running it
    DONE = "done"
    FAILED = "failed"


#: Queue transports (SQS): a message body above this goes through S3, its message a pointer.
MAX_MESSAGE_BYTES = 200 * 1024
#: The message attribute (and S3 object metadata) holding the orchestrator's signature of
#: what it writes for a job, under the job's key.
SIG_ATTRIBUTE = "cortex-sig"


class EventKind(StrEnum):
    """What a remote worker's event on its job's events queue reports."""

    STATE = "state"  # a state report, as ``Transport.report``
    NEXT = "next"  # acks, new leases and released batches, as ``Transport.next_task``
    HOOK = "hook"  # how ``on_job_complete`` went
    GPUS = "gpus"  # the latest samples of the GPUs the worker holds, under ``GPUS_FIELD``


def sign(secret: str, text: str) -> str:
    """Return the signature of an event's text under a worker's secret (HMAC-SHA256)."""
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
