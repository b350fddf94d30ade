"""The cortex-tui app: a stack of screens over one HTTP client."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from cortex_tui.client import CortexClient
from cortex_tui.errors import CortexTuiError
from cortex_tui.tui.apis_screen import ApisScreen
from cortex_tui.tui.deploy_screen import DeployScreen
from cortex_tui.tui.help_screen import HelpScreen, view_bindings
from cortex_tui.tui.job_screen import JobScreen
from cortex_tui.tui.jobs_screen import JobsScreen
from cortex_tui.tui.keyed_table import KeyedTable
from cortex_tui.tui.saved_file import free_path, write_lines
from cortex_tui.tui.submit_screen import SubmitScreen

DEFAULT_REFRESH_S = 2.0


class CortexApp(App[None]):
    """APIs → jobs → job → logs, live, over the orchestrator's HTTP endpoints.

    Args:
        client: The client every request goes through (built against a test server, or a
            stub transport for snapshots).
        readonly: Refuse (and hide) every action that changes something: deploy, submit,
            stop, delete.
        refresh_s: Seconds between two polls of a screen.
        clock: Wall-clock time (epoch seconds), for durations and ages.
        monotonic: A monotonic clock, for throughput.
        notices: Lines to show when the app opens (e.g. that the embedded server started).
        save_dir: Where saved results and logs go (the current directory by default).
    """

    TITLE = "cortex-tui"
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
        Binding("ctrl+p", "command_palette", "Commands", show=False),
    ]

    def __init__(
        self,
        client: CortexClient,
        *,
        readonly: bool = False,
        refresh_s: float = DEFAULT_REFRESH_S,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        notices: Iterable[str] = (),
        save_dir: Path | None = None,
    ) -> None:
        super().__init__()
        self.client = client
        self.readonly = readonly
        self.refresh_s = refresh_s
        self.clock = clock
        self.monotonic = monotonic
        self.notices = list(notices)
        self.save_dir = save_dir

    def on_mount(self) -> None:
        self.sub_title = self.client.base_url
        self.push_screen(ApisScreen())
        for notice in self.notices:
            self.notify(notice, timeout=10)

    def view_title(self, title: str) -> str:
        """Return a view's title, marked when the app is read-only."""
        return f"{title} (read-only)" if self.readonly else title

    def refuse_if_readonly(self, what: str) -> bool:
        """Say so and return True when the app is read-only."""
        if self.readonly:
            self.notify(
                f"read-only mode (--readonly): {what} is disabled",
                title="refused",
                severity="warning",
            )
        return self.readonly

    # --- actions shared by screens ------------------------------------------------

    def action_help(self) -> None:
        """Show the help of the current view."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def open_submit(self, api: str) -> None:
        """Open the submit form for ``api``; on success, open the new job."""
        if self.refuse_if_readonly("submitting a job"):
            return

        def submitted(job_id: str | None) -> None:
            if job_id:
                self.notify(f"submitted job {job_id} to {api}")
                if isinstance(self.screen, JobsScreen):  # back there, the new job is selected
                    self.screen.query_one(KeyedTable).select(job_id)
                self.push_screen(JobScreen(api, job_id))

        self.push_screen(SubmitScreen(api), submitted)

    def open_deploy(self, then: Callable[[], None]) -> None:
        """Open the deploy dialog; call ``then`` when it closes after deploying."""
        if self.refuse_if_readonly("deploying"):
            return
        self.push_screen(DeployScreen(), lambda deployed: then() if deployed else None)

    @work(thread=True, group="delete")
    def delete_api(self, name: str, then: Callable[[], None]) -> None:
        """Delete an API (stopping its jobs) in a worker thread."""
        if self.readonly:  # the view refused already; never reached from a read-only view
            return
        try:
            message = self.client.delete_api(name).get("message") or f"deleted {name}"
        except CortexTuiError as e:
            self.call_from_thread(self.notify, f"could not delete {name}: {e}", severity="error")
        else:
            self.call_from_thread(self.notify, str(message))
        self.call_from_thread(then)

    @work(thread=True, group="save")
    def save_lines(self, what: str, name: str, lines: Callable[[], Iterator[str]]) -> None:
        """Write the lines ``lines()`` streams to a new file ``name`` (in a worker thread),
        then say where, or why not."""
        path = free_path(self.save_dir or Path.cwd(), name)
        try:
            count = write_lines(path, lines())
        except (CortexTuiError, OSError) as e:
            self.call_from_thread(self.notify, f"could not save {what}: {e}", severity="error")
        else:
            self.call_from_thread(self.notify, f"saved {count} {what} to {path}", timeout=15)

    def action_home(self) -> None:
        """Go back to the APIs."""
        while len(self.screen_stack) > 2:
            self.pop_screen()

    async def _run_binding(self, screen: Screen[object], action: str) -> None:
        # An action of the view runs where a key press would: on the focused widget if it
        # defines it (the log view's scrolling), else on the screen.
        focused = screen.focused
        target = focused if hasattr(focused, f"action_{action}") else screen
        await self.run_action(action, target)

    # --- the command palette --------------------------------------------------------

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Offer every action of the current view, then the app's own."""
        view = type(screen).__name__.removesuffix("Screen")
        for binding in view_bindings(screen):
            yield SystemCommand(
                binding.description,
                f"{view} view · key {self.get_key_display(binding)}",
                partial(self._run_binding, screen, binding.action),
            )
        yield SystemCommand("Go to APIs", "back to the first view", self.action_home)
        yield SystemCommand("Help", "keys and what the current view shows", self.action_help)
        yield from super().get_system_commands(screen)
