"""The CLI's exception root and the errors a user sees as one ``error: ...`` line."""

from __future__ import annotations


class CortexTuiError(Exception):
    """Base for every error cortex-tui reports to a user; ``str(e)`` is the message."""


class ServerUnreachable(CortexTuiError):
    """Nothing answers at the orchestrator's URL."""

    def __init__(self, url: str) -> None:
        super().__init__(f"no orchestrator answers at {url} (check --server / CORTEX_TUI_SERVER)")
        self.url = url


class StoppedByDown(ServerUnreachable):
    """Nothing answers, and the orchestrator was stopped on purpose with ``cortex-tui down``."""

    def __init__(self, url: str, home: str) -> None:
        super().__init__(url)
        CortexTuiError.__init__(
            self,
            f"the orchestrator of {home} was stopped with cortex-tui down, and this command"
            " does not start it again: start it with cortex-tui up",
        )


class ApiError(CortexTuiError):
    """The orchestrator answered with an error status; the message is the server's."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


class EmbeddedServerError(CortexTuiError):
    """The embedded orchestrator could not be started or stopped."""


class InputError(CortexTuiError):
    """A file or argument given on the command line is invalid."""


class WaitTimeout(CortexTuiError):
    """A job did not end within the time a caller was willing to wait (it goes on)."""
