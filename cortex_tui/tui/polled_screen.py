"""A screen with one poller: it fetches in a thread every few seconds and shows the result."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual import events, work
from textual.binding import Binding
from textual.screen import ModalScreen

from cortex_tui.client import CortexClient
from cortex_tui.errors import CortexTuiError
from cortex_tui.tui.banner import ConnectionBanner
from cortex_tui.tui.cells import is_terminal, remaining_batches
from cortex_tui.tui.confirm_screen import ConfirmScreen
from cortex_tui.tui.keyed_table import KeyedTable
from cortex_tui.tui.list_filter import ListFilter
from cortex_tui.tui.messages import DataFetched, FetchFailed, JobStopped
from cortex_tui.tui.view_screen import ViewScreen

if TYPE_CHECKING:
    pass


_LIST_ACTIONS = ("open", "filter")  # a list's enter and /, hidden while its filter has focus


class PolledScreen(ViewScreen):
    """Base of the APIs, jobs and job screens.

    Subclasses implement ``fetch`` (runs in a worker thread, may do blocking I/O through
    the client) and ``show`` (runs on the UI thread with what ``fetch`` returned). A poll
    starts only when the previous one has answered, so a slow server is never hammered,
    and only while the screen is the one on top.
    """

    HELP: ClassVar[str] = ""
    REFUSED_WHEN_READONLY: ClassVar[dict[str, str]] = {}
    """The view's actions that change something, and what a refusal calls each."""

    def __init__(self) -> None:
        super().__init__()
        self._in_flight = False

    def fetch(self, client: CortexClient) -> Any:
        """Return what the screen shows; called in a worker thread."""
        raise NotImplementedError

    def show(self, data: Any) -> None:
        """Show what ``fetch`` returned; called on the UI thread."""
        raise NotImplementedError

    # --- read-only ----------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # False, not None: read-only hides these keys (footer, help, command palette)
        # rather than showing them disabled.
        if action in _LIST_ACTIONS and self.list_filter is not None:
            # In the filter, enter and / are the filter's (its footer says what they do).
            return not self.list_filter.has_focus
        return not (self.cortex.readonly and action in self.REFUSED_WHEN_READONLY)

    def on_key(self, event: events.Key) -> None:
        # A hidden key is not bound any more: say why it does nothing.
        if not self.cortex.readonly:
            return
        for binding in Binding.make_bindings(self.BINDINGS):
            what = self.REFUSED_WHEN_READONLY.get(binding.action)
            if binding.key == event.key and what is not None:
                event.stop()
                self.cortex.refuse_if_readonly(what)
                return

    # --- polling ----------------------------------------------------------------

    def on_mount(self) -> None:
        # Textual calls every class's own on_mount, this one after a view's: a view's
        # on_mount must not call it again (that set a second timer, polling twice as often).
        self.fit(self.app.size.width)
        self.poll_now()
        self.set_interval(self.cortex.refresh_s, self._tick)

    def on_screen_resume(self) -> None:
        self.fit(self.app.size.width)
        self.poll_now()

    # --- the / filter of a list ------------------------------------------------------

    @property
    def list_filter(self) -> ListFilter | None:
        """Return the view's filter, if it has one."""
        return self.query(ListFilter).first() if self.query(ListFilter) else None

    def action_filter(self) -> None:
        """Filter the list: only rows holding what is typed."""
        # A priority key, so that what is typed right after it lands in the filter.
        box = self.list_filter
        if box is not None:
            box.open()

    def action_keep_filter(self) -> None:
        """Go from the filter back to the list, keeping the filter."""
        box = self.list_filter
        if box is not None:
            box.keep()
            self.query_one(KeyedTable).focus()

    def on_input_changed(self, event: ListFilter.Changed) -> None:
        if event.input is self.list_filter:
            self.refill()

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
        """Clear the filter, else go back to the previous screen."""
        box = self.list_filter
        if box is not None and (box.active or box.has_focus):
            box.clear()
            self.query_one(KeyedTable).focus()
            self.refill()
        elif len(self.app.screen_stack) > 2:
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
