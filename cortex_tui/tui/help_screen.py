"""``?``: what the focused view shows and every key it takes."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from cortex_tui.tui.key_footer import KeyFooter

_GLOBAL = (
    ("ctrl+p", "command palette: every action, searchable"),
    ("?", "this help"),
    ("escape", "back (or close a dialog)"),
    ("q", "quit"),
)


class HelpScreen(ModalScreen[None]):
    """Help for one screen: its description and its keys."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 84;
        max-width: 100%;
        height: auto;
        max-height: 90%;
        border: thick $accent;
        background: $panel;
        padding: 1 2;
    }
    HelpScreen.-short > VerticalScroll { max-height: 100%; padding: 0 2; }
    """
    #: Below this many rows the help gives up its margins and padding to fit a 24-row terminal.
    SHORT_BELOW = 30
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, screen: Screen[object]) -> None:
        super().__init__()
        self.target = screen

    def compose(self) -> ComposeResult:
        title = str(self.target.title or type(self.target).__name__)
        text = Text()
        text.append(f"{title}\n\n", style="bold")
        readonly = getattr(self.app, "readonly", False)
        help_text = getattr(self.target, "READONLY_HELP" if readonly else "HELP", None)
        text.append(str(help_text or getattr(self.target, "HELP", "")) + "\n")
        if readonly:
            text.append(
                "\nRead-only (--readonly): deploying, submitting, retrying, stopping and"
                " deleting are turned off, and their keys are not listed.\n",
                style="bold yellow",
            )
        keys = Table.grid(padding=(0, 2))
        keys.add_column(style="bold cyan", no_wrap=True)
        keys.add_column()
        bindings = view_bindings(self.target)
        own_keys = {key for binding in bindings for key in binding.key.split(",")}
        for binding in bindings:
            keys.add_row(self.app.get_key_display(binding), binding.description)
        for key, what in _GLOBAL:
            if key not in own_keys:  # the view says what its own escape does
                keys.add_row(key, what)
        with VerticalScroll():
            yield Static(text)
            yield Static(keys)
        yield KeyFooter()

    def on_mount(self) -> None:
        self.set_class(self.app.size.height < self.SHORT_BELOW, "-short")

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.height < self.SHORT_BELOW, "-short")

    def action_close(self) -> None:
        """Close the help."""
        self.dismiss(None)


def view_bindings(screen: Screen[object]) -> list[Binding]:
    """Return the bindings a view defines itself (not scrolling or focus plumbing)."""
    seen: set[str] = set()
    found = []
    for active in screen.active_bindings.values():
        binding = active.binding
        if binding.action not in _own_actions(active.node) or binding.action in seen:
            continue
        if binding.action in ("help", "quit", "command_palette"):
            continue
        seen.add(binding.action)
        found.append(binding)
    return found


def _own_actions(node: object) -> set[str]:
    """Return the actions bound by this project's classes in the node's hierarchy."""
    actions: set[str] = set()
    for cls in type(node).__mro__:
        if cls.__module__.startswith("cortex_tui"):
            for binding in cls.__dict__.get("BINDINGS", []):
                if isinstance(binding, Binding) and binding.description:
                    actions.add(binding.action)
    return actions
