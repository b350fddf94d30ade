"""The frame every full-screen view shares: a title bar, the connection banner, the view's
own widgets, and a footer of its keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual import events
from textual.app import ComposeResult
from textual.screen import Screen

from cortex_tui.tui.banner import ConnectionBanner
from cortex_tui.tui.key_footer import KeyFooter
from cortex_tui.tui.title_bar import TitleBar

if TYPE_CHECKING:
    from cortex_tui.tui.app import CortexApp


class ViewScreen(Screen[None]):
    """Base of the full-screen views; subclasses yield their widgets in ``compose_body``."""

    NARROW_BELOW: ClassVar[int] = 0
    """Below this many columns the view takes its narrow layout (class ``-narrow``)."""

    def __init__(self) -> None:
        super().__init__()
        self.narrow = False

    @property
    def cortex(self) -> CortexApp:
        """Return the app, typed."""
        return cast("CortexApp", self.app)

    def compose(self) -> ComposeResult:
        yield TitleBar()
        yield ConnectionBanner()
        yield from self.compose_body()
        yield KeyFooter()

    def compose_body(self) -> ComposeResult:
        """Yield the widgets between the banner and the footer."""
        yield from ()

    def on_resize(self, event: events.Resize) -> None:
        self.fit(event.size.width)

    def fit(self, width: int) -> None:
        """Take the narrow layout below ``NARROW_BELOW`` columns, else the wide one."""
        narrow = width < self.NARROW_BELOW
        if narrow != self.narrow:
            self.narrow = narrow
            self.set_class(narrow, "-narrow")
            self.refill()

    def refill(self) -> None:
        """Show the data again, without fetching: the layout or the filter changed."""
