"""A scrolling view of a whole job log: worker filter, search highlights, wrap, timestamps.

Only the rows on screen are rendered (the line API), so a log of a million lines scrolls
as fast as one of a hundred; every line received is kept, none is dropped.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable

from rich.cells import cell_len
from rich.text import Text
from textual.binding import Binding
from textual.events import MouseScrollUp
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from cortex_tui.tui.logline import LogLine, parse_line

MATCH_STYLE = "black on yellow"
CURRENT_MATCH_STYLE = "black on bright_green"


class LogView(ScrollView, can_focus=True):
    """Every line of a job's log, of all workers or one, followed live."""

    DEFAULT_CSS = """
    LogView {
        height: 1fr;
        background: $surface;
    }
    """
    BINDINGS = [
        Binding("up,k", "scroll_up", "Up", show=False),
        Binding("down,j", "scroll_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown,space", "page_down", "Page down", show=False),
        Binding("home,g", "scroll_home", "Top", show=False),
        Binding("end,G", "scroll_end", "Bottom", show=False),
        Binding("left", "scroll_left", "Left", show=False),
        Binding("right", "scroll_right", "Right", show=False),
    ]

    follow: reactive[bool] = reactive(True)
    wrap: reactive[bool] = reactive(False)
    timestamps: reactive[bool] = reactive(True)
    worker: reactive[str | None] = reactive(None)
    pattern: reactive[str] = reactive("")

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lines: list[LogLine] = []
        self.worker_names: list[str] = []  # in order of first appearance
        self._shown: list[int] = []  # indexes into lines that pass the worker filter
        self._row_starts: list[int] = [0]  # first display row of each shown line, + the end
        self._max_width = 0
        self._layout_width = 0
        self.matches: list[int] = []  # positions in _shown of lines matching the pattern
        self.current_match = -1

    # --- feeding ----------------------------------------------------------------

    def append_raw(self, raw_lines: Iterable[str]) -> None:
        """Parse and add lines as the server sent them, then scroll if following."""
        start = len(self.lines)
        previous = self.lines[-1] if self.lines else None
        for raw in raw_lines:
            previous = parse_line(raw, previous)
            self.lines.append(previous)
            if previous.worker not in self.worker_names:
                self.worker_names.append(previous.worker)
        self._extend(range(start, len(self.lines)))
        if self.follow:
            self._scroll_to_end()

    def _extend(self, indexes: Iterable[int]) -> None:
        needle = self.pattern.casefold()
        for index in indexes:
            line = self.lines[index]
            if self.worker is not None and line.worker != self.worker:
                continue
            plain = line.plain(self.timestamps)
            if needle and needle in plain.casefold():
                self.matches.append(len(self._shown))
            width = len(plain) if plain.isascii() else cell_len(plain)
            self._shown.append(index)
            self._row_starts.append(self._row_starts[-1] + self._rows_of(width))
            if width > self._max_width:
                self._max_width = width
        self._resize_virtual()

    def _rows_of(self, width: int) -> int:
        if not self.wrap:
            return 1
        return max(1, -(-width // max(1, self._layout_width)))

    def _rebuild(self) -> None:
        anchor = self._top_line()
        self._shown = []
        self._row_starts = [0]
        self._max_width = 0
        self.matches = []
        self._extend(range(len(self.lines)))
        self.current_match = -1
        if self.follow:
            self._scroll_to_end()
        elif anchor is not None:
            self.scroll_to_line(anchor)
        self.refresh()

    def _resize_virtual(self) -> None:
        width = self._layout_width if self.wrap else self._max_width
        self.virtual_size = Size(width, self._row_starts[-1])
        self.refresh()

    def _scroll_to_end(self) -> None:
        # The new virtual size is applied at the next layout: scroll after it.
        self.call_after_refresh(self.scroll_end, animate=False, immediate=True, x_axis=False)

    # --- scrolling: moving up pauses following, the end resumes it (as ``tail -f`` in less)

    def action_scroll_up(self) -> None:
        """Scroll up one line and stop following."""
        self.follow = False
        super().action_scroll_up()

    def action_page_up(self) -> None:
        """Scroll up one page and stop following."""
        self.follow = False
        super().action_page_up()

    def action_scroll_home(self) -> None:
        """Go to the first line and stop following."""
        self.follow = False
        super().action_scroll_home()

    def action_scroll_end(self) -> None:
        """Go to the last line and follow new ones."""
        self.follow = True
        super().action_scroll_end()

    def on_mouse_scroll_up(self, event: MouseScrollUp) -> None:
        self.follow = False

    # --- reactive toggles --------------------------------------------------------

    def watch_wrap(self) -> None:
        self._rebuild()

    def watch_timestamps(self) -> None:
        self._rebuild()

    def watch_worker(self) -> None:
        self._rebuild()

    def watch_pattern(self) -> None:
        self._rebuild()

    def watch_follow(self, follow: bool) -> None:
        if follow:
            self._scroll_to_end()

    def on_resize(self) -> None:
        width = self.scrollable_content_region.width
        if width != self._layout_width:
            self._layout_width = width
            if self.wrap:
                self._rebuild()

    # --- search ----------------------------------------------------------------

    def next_match(self, backwards: bool = False) -> bool:
        """Scroll to the next (or previous) line matching the pattern; False if none."""
        if not self.matches:
            return False
        top = self._top_position()
        if self.current_match < 0:
            after = [i for i, pos in enumerate(self.matches) if pos >= top]
            self.current_match = after[0] if after and not backwards else len(self.matches) - 1
            if backwards:
                before = [i for i, pos in enumerate(self.matches) if pos < top]
                self.current_match = before[-1] if before else len(self.matches) - 1
        else:
            step = -1 if backwards else 1
            self.current_match = (self.current_match + step) % len(self.matches)
        self.follow = False
        self._center(self.matches[self.current_match])
        self.refresh()
        return True

    def _center(self, position: int) -> None:
        row = self._row_starts[position]
        self.scroll_to(y=max(0, row - self.size.height // 2), animate=False, immediate=True)

    def scroll_to_line(self, line_index: int) -> None:
        """Scroll so that the line ``line_index`` of ``lines`` (or the next shown) is on top."""
        position = bisect_right(self._shown, line_index - 1)
        position = min(position, len(self._shown) - 1)
        if position >= 0:
            self.scroll_to(y=self._row_starts[position], animate=False, immediate=True)

    def _top_position(self) -> int:
        row = int(self.scroll_offset.y)
        return max(0, bisect_right(self._row_starts, row) - 1)

    def _top_line(self) -> int | None:
        if not self._shown:
            return None
        return self._shown[min(self._top_position(), len(self._shown) - 1)]

    @property
    def shown_count(self) -> int:
        """Return how many lines pass the worker filter."""
        return len(self._shown)

    # --- rendering --------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        """Render one display row: a whole line, or one slice of a wrapped one."""
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        row = scroll_y + y
        style = self.rich_style
        if row >= self._row_starts[-1] or not self._shown:
            return Strip.blank(width, style)
        position = bisect_right(self._row_starts, row) - 1
        line = self.lines[self._shown[position]]
        text = line.styled(self.timestamps)
        text.stylize(style)
        if self.pattern:
            self._highlight(text, position)
        strip = Strip(text.render(self.app.console), text.cell_len)
        if self.wrap:
            offset = (row - self._row_starts[position]) * max(1, self._layout_width)
            return strip.crop_extend(offset, offset + width, style)
        return strip.crop_extend(scroll_x, scroll_x + width, style)

    def _highlight(self, text: Text, position: int) -> None:
        current = (
            self.current_match >= 0
            and self.current_match < len(self.matches)
            and self.matches[self.current_match] == position
        )
        style = CURRENT_MATCH_STYLE if current else MATCH_STYLE
        haystack = text.plain.casefold()
        needle = self.pattern.casefold()
        start = haystack.find(needle)
        while start >= 0 and needle:
            text.stylize(style, start, start + len(needle))
            start = haystack.find(needle, start + len(needle))
