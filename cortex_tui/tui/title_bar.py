"""The one-line title of a view: its title and subtitle, kept in step with the screen."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class TitleBar(Static):
    """A docked title that follows its screen's ``title`` and ``sub_title``.

    Unlike Textual's Header it has no child widgets to look up, so a title that changes
    while the screen is being closed cannot fail.
    """

    DEFAULT_CSS = """
    TitleBar {
        dock: top;
        width: 100%;
        height: 1;
        background: $panel;
        color: $foreground;
        content-align: center middle;
    }
    """

    def on_mount(self) -> None:
        self.watch(self.screen, "title", self._show)
        self.watch(self.screen, "sub_title", self._show)

    def _show(self) -> None:
        text = Text("◆ ", style="bold")
        text.append(str(self.screen.title or self.app.title), style="bold")
        if self.screen.sub_title:
            text.append(f" — {self.screen.sub_title}", style="dim")
        self.update(text)
