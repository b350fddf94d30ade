"""The seam between a worker and its orchestrator: the protocol's five calls.

A worker is launched with a transport description (an ``http://`` or ``https://`` URL of
the orchestrator, or ``sqs://?...`` naming a remote job's queues: ``runtime.sqs_transport``)
and its own secret; ``open_transport`` picks the implementation
from the description's scheme. Every call carries the worker's credential, and every
call is safe to repeat (acks of finished batches are ignored; a lease lost with a
dropped answer expires back to the queue).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from runtime.client import OrchestratorClient
from runtime.errors import WorkerError
from runtime.protocol import DEFAULT_ORCHESTRATOR_WAIT_S, GPUS_FIELD, SERVER_UID_ENV, Report

Json = dict[str, Any]


class Transport(ABC):
    """What a worker says to its orchestrator, and what it hears back."""

    @abstractmethod
    def spec(self) -> Json:
        """Return what the worker needs to load its predictor and run its job."""

    @abstractmethod
    def report(self, state: Report, reason: str | None = None, error: str | None = None) -> None:
        """Report the worker's own state (and, when it failed, why)."""

    @abstractmethod
    def next_task(self, request: Json) -> Json:
        """Hand over acks (and releases) and ask for the next task (``runtime.protocol.Task``)."""

    @abstractmethod
    def heartbeat(self, batch_ids: list[int], gpus: list[Json] | None = None) -> Json:
        """Extend the leases of the batches the worker holds; report its GPUs' samples."""

    @abstractmethod
    def report_hook(self, error: str | None) -> None:
        """Report how ``on_job_complete`` went."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection (the next call opens a new one)."""


class HttpTransport(Transport):
    """The protocol over HTTP(S): ``/_cortex/workers/<worker_id>/...`` with a bearer secret."""

    def __init__(
        self,
        url: str,
        worker_id: str,
        secret: str,
        wait_s: float = DEFAULT_ORCHESTRATOR_WAIT_S,
        server_cert: str | None = None,
    ) -> None:
        uid = os.environ.get(SERVER_UID_ENV, "")
        self._client = OrchestratorClient(
            url,
            worker_id,
            secret,
            wait_s=wait_s,
            server_cert=server_cert,
            server_uid=int(uid) if uid.isdigit() else None,
        )

    def spec(self) -> Json:
        """``GET spec``."""
        return dict(self._client.call("GET", "spec"))

    def report(self, state: Report, reason: str | None = None, error: str | None = None) -> None:
        """``POST state``."""
        body: Json = {"state": state.value}
        if reason is not None:
            body["reason"] = reason
        if error is not None:
            body["error"] = error
        self._client.call("POST", "state", body)

    def next_task(self, request: Json) -> Json:
        """``POST next``."""
        return dict(self._client.call("POST", "next", request))

    def heartbeat(self, batch_ids: list[int], gpus: list[Json] | None = None) -> Json:
        """``POST heartbeat`` (with ``gpus``, the samples, when there are some)."""
        body: Json = {"batch_ids": batch_ids}
        if gpus:
            body[GPUS_FIELD] = gpus
        return dict(self._client.call("POST", "heartbeat", body))

    def report_hook(self, error: str | None) -> None:
        """``POST hook``."""
        self._client.call("POST", "hook", {"error": error})

    def close(self) -> None:
        """Close the kept-alive connection."""
        self._client.close()


Opener = Callable[[str, str, str, float, str | None], Transport]


def _sqs(
    description: str, worker_id: str, secret: str, wait_s: float, cert: str | None
) -> Transport:
    """Open the SQS transport (imported only when used: it needs boto3)."""
    from runtime.sqs_transport import SqsTransport

    return SqsTransport(description, worker_id, secret, wait_s, cert)


_TRANSPORTS: dict[str, Opener] = {"http": HttpTransport, "https": HttpTransport, "sqs": _sqs}


def open_transport(
    description: str,
    worker_id: str,
    secret: str,
    *,
    wait_s: float = DEFAULT_ORCHESTRATOR_WAIT_S,
    server_cert: str | None = None,
) -> Transport:
    """Return the transport a worker was launched with.

    Args:
        description: Where the orchestrator is, e.g. ``http://127.0.0.1:7311``.
        worker_id: This worker's id.
        secret: This worker's own secret.
        wait_s: How long a call waits for an orchestrator that does not answer.
        server_cert: The PEM certificate an HTTPS orchestrator serves (trusted alone).
    """
    scheme = urlsplit(description).scheme
    if scheme not in _TRANSPORTS:
        known = ", ".join(f"{s}://" for s in _TRANSPORTS)
        raise WorkerError(f"no transport for {description!r}: expected one of {known}")
    return _TRANSPORTS[scheme](description, worker_id, secret, wait_s, server_cert)
