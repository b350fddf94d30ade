"""The Textual terminal UI: APIs, jobs, live worker stats, logs, stop, submit and deploy."""

from __future__ import annotations

from cortex_tui.tui.app import CortexApp

__all__ = ["CortexApp"]
