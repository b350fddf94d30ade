"""Messages the TUI's workers send back to the UI thread (named for what happened)."""

from __future__ import annotations

from typing import Any

from textual.message import Message

from cortex_tui.errors import CortexTuiError


class DataFetched(Message):
    """A screen's poll returned the server's documents."""

    def __init__(self, data: Any) -> None:
        super().__init__()
        self.data = data


class FetchFailed(Message):
    """A screen's poll failed: the server is down, restarting, or refused the request."""

    def __init__(self, error: CortexTuiError) -> None:
        super().__init__()
        self.error = error


class JobStopped(Message):
    """The server stopped a job (or refused to)."""

    def __init__(self, job_id: str, error: CortexTuiError | None = None) -> None:
        super().__init__()
        self.job_id = job_id
        self.error = error
