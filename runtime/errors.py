"""The worker's exception root. The runtime ships alone: it imports nothing of the orchestrator."""

from __future__ import annotations

from runtime.protocol import EndReason


class WorkerError(Exception):
    """Base for errors that end a worker, with the message its job shows."""

    reason = EndReason.CRASH


class PredictorLoadError(WorkerError):
    """The predictor cannot be loaded: a missing file or class, or a bad signature.

    Retrying cannot help, so the job fails at once.
    """

    reason = EndReason.LOAD_ERROR


class PredictorInitError(WorkerError):
    """The predictor's ``__init__`` raised."""

    reason = EndReason.INIT_ERROR


class OrchestratorUnreachable(WorkerError):
    """The orchestrator did not answer for longer than the worker waits."""

    reason = EndReason.UNREACHABLE
