"""The banner that says the orchestrator cannot be reached (and that the TUI retries)."""

from __future__ import annotations

from datetime import datetime

from textual.widgets import Static

from cortex_tui.errors import ApiError, CortexTuiError


class ConnectionBanner(Static):
    """A one-line warning docked at the top of a screen, hidden while all is well."""

    DEFAULT_CSS = """
    ConnectionBanner {
        dock: top;
        width: 100%;
        height: auto;
        padding: 0 1;
        background: $error;
        color: $text;
        text-style: bold;
        display: none;
    }
    ConnectionBanner.-shown {
        display: block;
    }
    """

    def __init__(self) -> None:
        super().__init__(markup=False)

    def show_error(self, error: CortexTuiError, retry_s: float, now: float) -> None:
        """Show what went wrong and when the TUI tries again."""
        clock = datetime.fromtimestamp(now).strftime("%H:%M:%S")
        if isinstance(error, ApiError):
            text = f"the server refused: {error} (retrying every {retry_s:g}s, last try {clock})"
        else:
            text = (
                f"⚠ {error}; start it with: cortex-tui up (retrying every {retry_s:g}s, last"
                f" try {clock})"
            )
        self.update(text)
        self.add_class("-shown")

    def clear(self) -> None:
        """Hide the banner."""
        self.remove_class("-shown")

    @property
    def shown(self) -> bool:
        """Return whether the banner is showing."""
        return self.has_class("-shown")
