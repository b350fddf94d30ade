"""The footer: a view's keys by importance, cut to the width, with quit and help always."""

from __future__ import annotations

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

ALWAYS = ("quit", "help")  # shown whatever the width: help lists every key of the view
_PALETTE_CELLS = 14  # "▏^p Commands ", docked right


class KeyFooter(Footer):
    """Textual's footer, fitted to narrow terminals.

    A view lists its keys in BINDINGS most important first; the footer shows as many of
    them as fit, stopping at the first that does not, then ``q Quit`` and ``? Help``, then
    the command palette's key if there is still room.
    """

    _composed_width = 0

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        self._composed_width = self.size.width
        keys: dict[str, tuple[Binding, bool]] = {}
        for _, binding, enabled, _ in self.screen.active_bindings.values():
            if binding.show:
                keys.setdefault(binding.action, (binding, enabled))
        always = [keys.pop(action) for action in ALWAYS if action in keys]
        room = self.size.width - sum(self._cells(binding) for binding, _ in always)
        shown: list[tuple[Binding, bool]] = []
        for binding, enabled in keys.values():
            room -= self._cells(binding)
            if room < 0:
                break
            shown.append((binding, enabled))
        for binding, enabled in shown + always:
            yield FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                binding.description,
                binding.action,
                disabled=not enabled,
            ).data_bind(compact=Footer.compact)
        if room >= _PALETTE_CELLS and self.show_command_palette:
            yield from self._palette_key()

    def _palette_key(self) -> ComposeResult:
        active = self.screen.active_bindings.get(self.app.COMMAND_PALETTE_BINDING)
        if active is not None:
            yield FooterKey(
                active.binding.key,
                self.app.get_key_display(active.binding),
                active.binding.description,
                active.binding.action,
                classes="-command-palette",
            )

    def _cells(self, binding: Binding) -> int:
        return cell_len(self.app.get_key_display(binding)) + cell_len(binding.description) + 3

    def on_resize(self, event: events.Resize) -> None:
        if self._bindings_ready and event.size.width != self._composed_width:
            self.call_after_refresh(self.recompose)
