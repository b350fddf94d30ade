"""cortex-tui: run Batch APIs locally. ``from cortex_tui import Client`` is the Python client."""

from cortex_tui.errors import ApiError, CortexTuiError, InputError, ServerUnreachable, WaitTimeout
from cortex_tui.job import Job
from cortex_tui.job_status import JobStatus
from cortex_tui.sdk import Client

__all__ = [
    "ApiError",
    "Client",
    "CortexTuiError",
    "InputError",
    "Job",
    "JobStatus",
    "ServerUnreachable",
    "WaitTimeout",
]
