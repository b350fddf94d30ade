"""A screen with one poller: it fetches in a thread every few seconds and shows the result."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from textual import work
from textual.app import ComposeResult
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer

from cortex_tui.client import CortexClient
from cortex_tui.errors import CortexTuiError
from cortex_tui.tui.banner import ConnectionBanner
from cortex_tui.tui.cells import is_terminal, remaining_batches
from cortex_tui.tui.confirm_screen import ConfirmScreen
from cortex_tui.tui.messages import DataFetched, FetchFailed, JobStopped
from cortex_tui.tui.title_bar import TitleBar

if TYPE_CHECKING:
    from cortex_tui.tui.app import CortexApp


class PolledScreen(Screen[None]):
    """Base of the APIs, jobs and job screens.

    Subclasses implement ``fetch`` (runs in a worker thread, may do blocking I/O through
    the client) and ``show`` (runs on the UI thread with what ``fetch`` returned). A poll
    starts only when the previous one has answered, so a slow server is never hammered,
    and only while the screen is the one on top.
    """

    HELP: ClassVar[str] = ""

    def __init__(self) -> None:
        super().__init__()
        self._in_flight = False

    @property
    def cortex(self) -> CortexApp:
        """Return the app, typed."""
        return cast("CortexApp", self.app)

    def compose(self) -> ComposeResult:
        yield TitleBar()
        yield ConnectionBanner()
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        """Yield the widgets between the banner and the footer."""
        yield from ()

    def fetch(self, client: CortexClient) -> Any:
        """Return what the screen shows; called in a worker thread."""
        raise NotImplementedError

    def show(self, data: Any) -> None:
        """Show what ``fetch`` returned; called on the UI thread."""
        raise NotImplementedError

    # --- polling ----------------------------------------------------------------

    def on_mount(self) -> None:
        self.poll_now()
        self.set_interval(self.cortex.refresh_s, self._tick)

    def on_screen_resume(self) -> None:
        self.poll_now()

    def _tick(self) -> None:
        if self._visible():
            self.poll_now()

    def _visible(self) -> bool:
        # A dialog on top leaves this screen in view: keep it live behind the dialog.
        stack = self.app.screen_stack
        if stack[-1] is self:
            return True
        return len(stack) > 1 and stack[-2] is self and isinstance(stack[-1], ModalScreen)

    def poll_now(self) -> None:
        """Fetch now, unless a fetch is already on its way."""
        if self._in_flight:
            return
        self._in_flight = True
        self._poll()

    @work(thread=True, group="poll")
    def _poll(self) -> None:
        try:
            data = self.fetch(self.cortex.client)
        except CortexTuiError as e:
            self.post_message(FetchFailed(e))
        else:
            self.post_message(DataFetched(data))

    def on_data_fetched(self, message: DataFetched) -> None:
        self._in_flight = False
        self.query_one(ConnectionBanner).clear()
        self.show(message.data)

    def on_fetch_failed(self, message: FetchFailed) -> None:
        self._in_flight = False
        self.query_one(ConnectionBanner).show_error(
            message.error, self.cortex.refresh_s, self.cortex.clock()
        )

    def action_refresh(self) -> None:
        """Fetch now."""
        self.poll_now()

    def action_back(self) -> None:
        """Go back to the previous screen."""
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()

    # --- stopping a job ------------------------------------------------------------

    def request_stop(self, api: str, job: dict[str, Any]) -> None:
        """Ask for confirmation, then stop the job (refused in read-only mode)."""
        if self.cortex.refuse_if_readonly("stopping a job"):
            return
        job_id = job["job_id"]
        if is_terminal(job.get("status")):
            self.notify(f"job {job_id} has already ended", severity="warning")
            return
        remaining = remaining_batches(job)
        if job.get("status") == "status_enqueuing":
            consequence = "The job is still being enqueued; results so far are kept."
        else:
            plural = "batch" if remaining == 1 else "batches"
            consequence = f"{remaining} {plural} not yet done; results so far are kept."

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._stop(api, job_id)

        self.app.push_screen(
            ConfirmScreen(f"Stop job {job_id} of {api}?", consequence, "Stop job"), confirmed
        )

    @work(thread=True, group="stop")
    def _stop(self, api: str, job_id: str) -> None:
        try:
            self.cortex.client.stop_job(api, job_id)
        except CortexTuiError as e:
            self.post_message(JobStopped(job_id, e))
        else:
            self.post_message(JobStopped(job_id))

    def on_job_stopped(self, message: JobStopped) -> None:
        if message.error is not None:
            self.notify(f"could not stop {message.job_id}: {message.error}", severity="error")
        else:
            self.notify(f"stopped job {message.job_id} (results so far are kept)")
        self.poll_now()
