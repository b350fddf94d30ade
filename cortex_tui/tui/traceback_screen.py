"""A failed batch in full: its error, attempts, worker, payload and traceback."""

from __future__ import annotations

import json
from typing import Any

from rich.syntax import Syntax
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from cortex_tui.tui.key_footer import KeyFooter

_PAYLOAD_CHARS = 2000


class TracebackScreen(ModalScreen[None]):
    """The traceback of one failed batch; escape closes it."""

    DEFAULT_CSS = """
    TracebackScreen { align: center middle; }
    TracebackScreen > VerticalScroll {
        width: 90%;
        height: 85%;
        border: thick $error;
        background: $panel;
        padding: 0 1;
    }
    TracebackScreen #head { text-style: bold; margin-bottom: 1; }
    """
    BINDINGS = [Binding("escape,q,t", "close", "Close")]

    def __init__(self, batch: dict[str, Any]) -> None:
        super().__init__()
        self.failed_batch = batch

    def compose(self) -> ComposeResult:
        batch = self.failed_batch
        payload = json.dumps(batch.get("payload"))
        if len(payload) > _PAYLOAD_CHARS:
            payload = payload[:_PAYLOAD_CHARS] + f"… ({len(payload)} characters)"
        head = (
            f"batch {batch.get('batch_index')} failed: {batch.get('error')}\n"
            f"attempts {batch.get('attempts')} · worker {batch.get('worker') or '-'}"
            f" · {batch_items(batch.get('first_item'), batch.get('size'))}"
        )
        with VerticalScroll():
            yield Static(head, id="head", markup=False)
            yield Static(f"payload: {payload}", markup=False)
            yield Static("")
            yield Static(
                Syntax(
                    batch.get("traceback") or "(no traceback recorded)",
                    "pytb",
                    theme="ansi_dark",
                    word_wrap=True,
                ),
                id="traceback",
            )
        yield KeyFooter()

    def action_close(self) -> None:
        """Close the traceback."""
        self.dismiss(None)


def batch_items(first: object, size: object) -> str:
    """Return which items a batch holds: ``item 7``, or ``items 8 to 11 (4 items)``."""
    if not isinstance(first, int) or not isinstance(size, int):
        return "items unknown"
    if size == 1:
        return f"item {first}"
    return f"items {first} to {first + size - 1} ({size} items)"
