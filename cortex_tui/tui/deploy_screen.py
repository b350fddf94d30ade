"""The deploy dialog: a project directory (with completion), deployed with progress shown."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Label, LoadingIndicator, Static

from cortex_tui.errors import CortexTuiError
from cortex_tui.tui.key_footer import KeyFooter
from cortex_tui.tui.path_input import PathInput, PathSuggester

if TYPE_CHECKING:
    from cortex_tui.tui.app import CortexApp

_RESULTS = {"created": "created {}", "updated": "updated {}", "up_to_date": "{} is up to date"}


class DeployScreen(ModalScreen[bool]):
    """Deploy the APIs of a directory's ``cortex.yaml``; dismissed with whether it deployed."""

    DEFAULT_CSS = """
    DeployScreen { align: center middle; }
    DeployScreen > Vertical {
        width: 84;
        max-width: 100%;
        height: auto;
        border: thick $accent;
        background: $panel;
        padding: 1 2;
    }
    DeployScreen #title { text-style: bold; margin-bottom: 1; }
    DeployScreen LoadingIndicator { height: 1; display: none; }
    DeployScreen #result { margin-top: 1; }
    DeployScreen Horizontal { height: auto; align-horizontal: right; margin-top: 1; }
    DeployScreen Button { margin-left: 2; }
    """
    BINDINGS = [Binding("escape", "close", "Close")]

    class Deployed(Message):
        """The server deployed the project."""

        def __init__(self, response: dict[str, Any], seconds: float) -> None:
            super().__init__()
            self.response = response
            self.seconds = seconds

    class Refused(Message):
        """The server (or the path) refused the deployment."""

        def __init__(self, error: str) -> None:
            super().__init__()
            self.error = error

    def __init__(self) -> None:
        super().__init__()
        self._started = 0.0
        self._deployed = False
        self._busy = False

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Deploy a project", id="title")
            yield Label("Project directory (holding cortex.yaml); tab completes")
            yield PathInput(
                str(Path.cwd()) + "/", id="path", suggester=PathSuggester(directories_only=True)
            )
            yield LoadingIndicator()
            yield Static("", id="result", markup=False)
            with Horizontal():
                yield Button("Close (esc)", id="close")
                yield Button("Deploy (enter)", id="deploy", variant="primary")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#path", PathInput).focus()
        self.set_interval(0.5, self._tick)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "deploy":
            self.action_deploy()
        else:
            self.action_close()

    def on_input_submitted(self, event: PathInput.Submitted) -> None:
        event.stop()
        self.action_deploy()

    def action_deploy(self) -> None:
        """Deploy the directory in the field."""
        if self._busy:
            return
        # No check of the path here: the server's (a missing directory, no cortex.yaml)
        # says what is wrong in the CLI's words, and a cortex.yaml's own path is taken too.
        path = Path(self.query_one("#path", PathInput).value.strip() or ".").expanduser()
        self._busy = True
        self._started = time.monotonic()
        self.query_one(LoadingIndicator).display = True
        self.query_one("#deploy", Button).disabled = True
        self._tick()
        self._deploy(path)

    def _tick(self) -> None:
        if self._busy:
            elapsed = time.monotonic() - self._started
            self.query_one("#result", Static).update(
                f"deploying (preparing the API: snapshot, image build where the backend"
                f" needs one)… {elapsed:.0f}s"
            )

    @work(thread=True, exclusive=True)
    def _deploy(self, path: Path) -> None:
        try:
            response = cast("CortexApp", self.app).client.deploy(path)
        except CortexTuiError as e:
            self.post_message(self.Refused(str(e)))
        else:
            self.post_message(self.Deployed(response, time.monotonic() - self._started))

    def _done(self, text: str) -> None:
        self._busy = False
        self.query_one(LoadingIndicator).display = False
        self.query_one("#deploy", Button).disabled = False
        self.query_one("#result", Static).update(text)

    def on_deploy_screen_deployed(self, message: Deployed) -> None:
        lines = [
            _RESULTS.get(api.get("result", ""), "{} deployed").format(api.get("name"))
            for api in message.response.get("apis", [])
        ]
        self._deployed = True
        self._done("\n".join(lines) + f"\n(done in {message.seconds:.1f}s; esc to close)")
        self.query_one("#close", Button).focus()

    def on_deploy_screen_refused(self, message: Refused) -> None:
        self._done(f"error: {message.error}")

    def action_close(self) -> None:
        """Close the dialog (a deployment in progress goes on in the server)."""
        self.dismiss(self._deployed)
