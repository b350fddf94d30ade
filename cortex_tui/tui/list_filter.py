"""The ``/`` filter of a list: only the rows whose text holds what is typed (any case)."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import Input


class ListFilter(Input):
    """A one-line filter above a list, hidden until ``/`` opens it.

    Enter goes back to the list keeping the filter (the box stays in view while it filters);
    escape clears it. Both are the screen's actions: it knows the list.
    """

    DEFAULT_CSS = "ListFilter { display: none; }"
    BINDINGS = [
        Binding("enter", "screen.keep_filter", "Back to list"),
        Binding("escape", "screen.back", "Clear filter"),
    ]

    @property
    def needle(self) -> str:
        """Return what rows must contain (case-folded), or "" for every row."""
        return self.value.strip().casefold()

    @property
    def active(self) -> bool:
        """Return whether the filter is in view."""
        return self.display

    def matches(self, *texts: str) -> bool:
        """Return whether a row with these texts passes the filter."""
        needle = self.needle
        return not needle or any(needle in text.casefold() for text in texts)

    def open(self) -> None:
        """Show the filter and type into it."""
        self.display = True
        # At once, not after the next refresh as focus() would: what is typed right after
        # the / (a paste, a fast typist) must land here, not in the list.
        self.screen.set_focus(self)

    def keep(self) -> None:
        """Leave the filter as it is (hidden when empty)."""
        self.display = bool(self.needle)

    def clear(self) -> None:
        """Show every row again."""
        self.value = ""
        self.display = False
