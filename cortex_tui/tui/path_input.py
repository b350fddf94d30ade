"""An Input that completes file and directory paths (tab or → accepts the suggestion)."""

from __future__ import annotations

import os

from textual.binding import Binding
from textual.suggester import Suggester
from textual.widgets import Input


class PathSuggester(Suggester):
    """Suggest the first entry of the typed directory that starts with the typed name."""

    def __init__(self, directories_only: bool = False) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.directories_only = directories_only

    async def get_suggestion(self, value: str) -> str | None:
        """Return ``value`` completed to an existing path, or None."""
        return complete_path(value, self.directories_only)


def complete_path(value: str, directories_only: bool = False) -> str | None:
    """Return ``value`` completed to the first matching entry (a directory ends in ``/``)."""
    if not value:
        return None
    head, sep, name = value.rpartition("/")
    directory = (head or "/") if sep else "."
    prefix = f"{head}/" if sep else ""
    try:
        entries = sorted(os.scandir(os.path.expanduser(directory)), key=lambda e: e.name)
    except OSError:
        return None
    for entry in entries:
        if not entry.name.startswith(name) or (entry.name.startswith(".") and not name):
            continue
        is_dir = entry.is_dir()
        if directories_only and not is_dir:
            continue
        completed = f"{prefix}{entry.name}{'/' if is_dir else ''}"
        if completed != value:
            return completed
    return None


class PathInput(Input):
    """A path field: tab accepts the suggested completion (or moves on when there is none)."""

    BINDINGS = [Binding("tab", "complete", "Complete", show=False)]

    def action_complete(self) -> None:
        """Accept the suggestion, or focus the next field.

        Suggestions are worked out in the background: one made for an earlier value (keys
        typed faster than it came, or pasted) is no completion of this one, and is ignored.
        """
        suggestion = self._suggestion
        if suggestion and suggestion != self.value and suggestion.startswith(self.value):
            self.value = suggestion
            self.cursor_position = len(self.value)
        else:
            self.screen.focus_next()
