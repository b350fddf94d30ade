"""The store's tables.

Status columns hold the wire strings of ``orchestrator.status``. Counters on ``Job``
are updated in the same transaction as the batch rows they count, so a status read
never scans a job's batches.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column, Index, Text, text
from sqlmodel import Field, SQLModel

from orchestrator.status import BatchState, JobStatus, WorkerState
from runtime.protocol import HookState


class Api(SQLModel, table=True):
    """A deployed predictor; ``api_id`` is the content hash of its current version.

    A deleted API keeps its row (``deleted_time`` set) while it has jobs, so they stay
    readable; it serves no new job, and deploying it again brings it back.
    """

    name: str = Field(primary_key=True)
    api_id: str
    spec: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    project_dir: str  # the immutable snapshot this version runs from
    source_dir: str  # where the user deployed it from
    backend: str
    created_time: float
    updated_time: float
    deleted_time: float | None = None


class Job(SQLModel, table=True):
    """One submission against an API, with the version it started with."""

    seq: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(unique=True, index=True)
    api_name: str = Field(index=True)
    api_id: str
    api_spec: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    project_dir: str
    backend: str
    status: str = JobStatus.ENQUEUING.value
    message: str | None = None
    workers: int
    batch_size: int
    config: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    source: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    timeout: float | None = None
    retries: int = 0
    max_restarts: int = 0
    # A retry's job: the job whose failed batches it re-runs (their items keep their indices).
    parent_job_id: str | None = Field(default=None, index=True)
    total: int = 0
    enqueued_items: int = 0
    queued: int = 0
    leased: int = 0
    succeeded: int = 0
    failed: int = 0
    time_sum: float = 0.0
    # Find the poison item (``orchestrator.store.isolation``): whether a failed batch is
    # searched by halves, the factor of the search's bound (the isolation_max_calls_factor
    # setting at submission), and how many of the job's items ended succeeded or failed.
    isolate_failures: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})
    isolation_calls_factor: float = Field(default=1.0, sa_column_kwargs={"server_default": "1"})
    items_succeeded: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    items_failed: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    hook_state: str = HookState.NONE
    hook_worker: str | None = None
    hook_error: str | None = None
    created_time: float
    start_time: float | None = None
    end_time: float | None = None


class JobSource(SQLModel, table=True):
    """A job's source spec, kept until enqueuing is done (then deleted)."""

    job_id: str = Field(primary_key=True)
    spec: str = Field(sa_column=Column(Text, nullable=False))


class Batch(SQLModel, table=True):
    """One ordered slice of a job's items: the unit of delivery, retry and failure."""

    __table_args__ = (
        Index("ix_batch_job_idx", "job_id", "idx", unique=True),
        Index("ix_batch_job_state_idx", "job_id", "state", "idx"),
        # Queue transports: the batches whose message waits on the queue (none elsewhere).
        Index(
            "ix_batch_waiting",
            "job_id",
            sqlite_where=text("state = 'queued' AND published = 1"),
        ),
        # Isolation's parts of failed batches, in item order (none in other jobs).
        Index("ix_batch_parts", "job_id", "first_item", sqlite_where=text("root_id IS NOT NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    job_id: str
    idx: int
    first_item: int
    size: int
    payload: str = Field(sa_column=Column(Text, nullable=False))
    state: str = BatchState.QUEUED.value
    attempts: int = 0  # leases handed out
    errors: int = 0  # times predict raised
    worker_id: str | None = None
    lease_expires: float | None = None
    leased_time: float | None = None  # when its current lease began (lease-to-ack latency)
    duration: float | None = None
    result: str | None = Field(default=None, sa_column=Column(Text))
    error: str | None = None
    traceback: str | None = Field(default=None, sa_column=Column(Text))
    finished_time: float | None = None
    # Queue transports (aws): whether the batch's current attempt has a message on the
    # job's work queue, and how many messages it has had (each message's ``attempt``).
    published: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    generation: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # Isolation (``orchestrator.store.isolation``). A part is half of a failed batch or of a
    # failed part: ``parent_id`` is the row it halves, ``root_id`` the job's batch it comes
    # from (both NULL for the job's own batches; a part's ``idx`` is negative). On a root:
    # its parts still queued or leased, its items recorded failed, the predict calls its
    # parts were given, and the predict time of its parts that succeeded (in ``duration``).
    # ``isolation`` says why a failed part was not searched further.
    parent_id: int | None = None
    root_id: int | None = None
    open_parts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    failed_items: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    isolation_calls: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    isolation: str | None = None


class WorkerRecord(SQLModel, table=True):
    """The record of one worker of one job; ``slot`` is the requested worker it serves or
    replaces. (The worker itself is ``runtime.worker.Worker``, a process or container.)"""

    __tablename__ = "worker"

    worker_id: str = Field(primary_key=True)
    job_id: str = Field(index=True)
    slot: int
    state: str = WorkerState.PENDING.value
    handle: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_time: float
    started_time: float | None = None
    ended_time: float | None = None
    exit_code: int | None = None
    reason: str | None = None  # a runtime.protocol.EndReason
    error: str | None = Field(default=None, sa_column=Column(Text))
    last_seen: float | None = None
    # The latest GPU samples its heartbeat carried (runtime.protocol.GpuKey), if it holds
    # GPUs, and when they came.
    gpus: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    gpus_time: float | None = None


class RemoteQueues(SQLModel, table=True):
    """The queues and bucket of a job whose workers use a queue transport (aws)."""

    __tablename__ = "remote_queues"

    job_id: str = Field(primary_key=True)
    work_url: str
    events_url: str
    bucket: str
    hook_published: bool = False
    closed: bool = False
