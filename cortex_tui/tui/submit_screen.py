"""The form that submits a job: items from a file, batch size, workers, config overrides."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from cortex_tui.errors import CortexTuiError, InputError
from cortex_tui.items import parse_config, read_items, read_jsonl, split_config_line
from cortex_tui.tui.key_footer import KeyFooter
from cortex_tui.tui.path_input import PathInput, PathSuggester

if TYPE_CHECKING:
    from cortex_tui.tui.app import CortexApp


class SubmitScreen(ModalScreen[str | None]):
    """Submit a job to one API; dismissed with the new job's id (None when cancelled)."""

    DEFAULT_CSS = """
    SubmitScreen { align: center middle; }
    SubmitScreen > VerticalScroll {
        width: 84;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: thick $accent;
        background: $panel;
        padding: 1 2;
    }
    SubmitScreen #title { text-style: bold; margin-bottom: 1; }
    SubmitScreen Label { margin-top: 1; }
    SubmitScreen #error { color: $error; margin-top: 1; }
    SubmitScreen Horizontal { height: auto; align-horizontal: right; margin-top: 1; }
    SubmitScreen Button { margin-left: 2; }
    """
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "submit", "Submit"),
    ]

    class Submitted(Message):
        """The server accepted the job."""

        def __init__(self, job_id: str) -> None:
            super().__init__()
            self.job_id = job_id

    class Refused(Message):
        """The form's input or the server refused the job."""

        def __init__(self, error: str) -> None:
            super().__init__()
            self.error = error

    def __init__(self, api: str) -> None:
        super().__init__()
        self.api = api

    def compose(self) -> ComposeResult:
        with VerticalScroll():  # in a short terminal the form scrolls to its buttons
            yield Static(f"Submit a job to {self.api}", id="title", markup=False)
            yield Label("Items file: a JSON list, or JSON lines (.jsonl), one item per line")
            yield PathInput(
                placeholder="path/to/items.json  (tab completes)",
                id="source",
                suggester=PathSuggester(),
            )
            yield Label("Batch size (items per batch)")
            yield Input("1", id="batch_size", type="integer")
            yield Label("Workers")
            yield Input("1", id="workers", type="integer")
            yield Label("Config overrides: key=value ... (JSON values; a.b=1 nests)")
            yield Input(placeholder="key=value key2=[1,2]  (over the API's config)", id="config")
            yield Static("", id="error", markup=False)
            with Horizontal():
                yield Button("Cancel (esc)", id="cancel")
                yield Button("Submit (ctrl+s)", id="submit", variant="primary")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#source", Input).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "submit":
            self.action_submit()
        else:
            self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def action_cancel(self) -> None:
        """Close the form without submitting."""
        self.dismiss(None)

    def action_submit(self) -> None:
        """Read the form and submit the job (in a worker thread)."""
        values = {field.id: field.value.strip() for field in self.query(Input) if field.id}
        self.query_one("#error", Static).update("submitting…")
        self.query_one("#submit", Button).disabled = True
        self._submit(values)

    @work(thread=True, exclusive=True)
    def _submit(self, values: dict[str, str]) -> None:
        try:
            body = build_body(values)
            job = cast("CortexApp", self.app).client.submit(self.api, body)
        except CortexTuiError as e:
            self.post_message(self.Refused(str(e)))
        else:
            self.post_message(self.Submitted(str(job["job_id"])))

    def on_submit_screen_submitted(self, message: Submitted) -> None:
        self.dismiss(message.job_id)

    def on_submit_screen_refused(self, message: Refused) -> None:
        self.query_one("#error", Static).update(message.error)
        self.query_one("#submit", Button).disabled = False


def build_body(values: dict[str, str]) -> dict[str, Any]:
    """Return the ``POST /<api>`` body for the form's values.

    Raises:
        InputError: A field is missing or invalid, or the file cannot be read.
    """
    source = values.get("source", "")
    if not source:
        raise InputError("choose the file that holds the job's items")
    path = Path(source).expanduser()
    if path.suffix in (".jsonl", ".ndjson"):
        items = read_jsonl(path)
    else:
        try:
            items = read_items(path)
        except InputError:
            try:
                items = read_jsonl(path)  # not one JSON list: maybe one item per line
            except InputError:
                raise InputError(
                    f"{path}: neither a JSON list nor JSON lines (one item per line)"
                ) from None
    body: dict[str, Any] = {
        "workers": _positive(values.get("workers", ""), "workers"),
        "item_list": {
            "items": items,
            "batch_size": _positive(values.get("batch_size", ""), "batch size"),
        },
    }
    config = parse_config(split_config_line(values.get("config", "")))
    if config:
        body["config"] = config
    return body


def _positive(text: str, what: str) -> int:
    if not text:
        raise InputError(f"{what}: enter a whole number (1 or more)")
    try:
        value = int(text)
    except ValueError:
        raise InputError(f"{what}: {text!r} is not a whole number") from None
    if value < 1:
        raise InputError(f"{what}: must be at least 1")
    return value
