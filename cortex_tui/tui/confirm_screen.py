"""A dialog that states what a destructive action does and asks to confirm it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from cortex_tui.tui.key_footer import KeyFooter


class ConfirmScreen(ModalScreen[bool]):
    """Confirm (``y``) or cancel (``n``, ``escape``); Cancel has the focus."""

    DEFAULT_CSS = """
    ConfirmScreen {
        align: center middle;
    }
    ConfirmScreen > Vertical {
        width: 64;
        height: auto;
        border: thick $error;
        background: $panel;
        padding: 1 2;
    }
    ConfirmScreen #title {
        text-style: bold;
        margin-bottom: 1;
    }
    ConfirmScreen #consequence {
        margin-bottom: 1;
    }
    ConfirmScreen Horizontal {
        height: auto;
        align-horizontal: right;
    }
    ConfirmScreen Button {
        margin-left: 2;
    }
    """
    BINDINGS = [
        Binding("y", "confirm", "Confirm"),
        Binding("n,escape", "cancel", "Cancel"),
    ]

    def __init__(self, title: str, consequence: str, confirm_label: str) -> None:
        super().__init__()
        self._title = title
        self._consequence = consequence
        self._confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self._title, id="title", markup=False)
            yield Static(self._consequence, id="consequence", markup=False)
            with Horizontal():
                yield Button("Cancel (n)", id="cancel")
                yield Button(f"{self._confirm_label} (y)", id="confirm", variant="error")
        yield KeyFooter()  # over the view's: its keys do nothing while the dialog is open

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm")

    def action_confirm(self) -> None:
        """Confirm the action."""
        self.dismiss(True)

    def action_cancel(self) -> None:
        """Cancel the action."""
        self.dismiss(False)
