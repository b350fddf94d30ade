"""A DataTable whose rows are keyed, updated in place cell by cell on each refresh."""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, ColumnKey

Cell = str | Text
Row = tuple[str, tuple[Cell, ...]]


class KeyedTable(DataTable[Cell]):
    """Rows identified by a key (an API name, a job id) that survive refreshes.

    ``sync`` changes only the cells that differ when the keys are the same as before; when
    rows come or go it rebuilds the table and keeps the cursor on the same key.
    """

    def __init__(self, columns: Sequence[tuple[str, str]], *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._columns = list(columns)
        self._keys: list[str] = []
        self._cells: dict[str, tuple[Cell, ...]] = {}
        self._wanted: str | None = None  # a key to select as soon as its row arrives

    def on_mount(self) -> None:
        for key, label in self._columns:
            self.add_column(label, key=key)

    @property
    def selected_key(self) -> str | None:
        """Return the key of the row under the cursor, or None when the table is empty."""
        if not self._keys or self.cursor_row < 0:
            return None
        try:
            row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        except CellDoesNotExist:
            return None
        return row_key.value

    def set_columns(self, columns: Sequence[tuple[str, str]]) -> None:
        """Show these columns from now on (a narrow layout, say); the next ``sync`` fills
        them, keeping the cursor on the same key."""
        if list(columns) == self._columns:
            return
        self._wanted = self.selected_key or self._wanted
        self._columns = list(columns)
        self._keys, self._cells = [], {}
        if self.is_mounted:
            self.clear(columns=True)
            for key, label in self._columns:
                self.add_column(label, key=key)

    def select(self, key: str) -> None:
        """Put the cursor on ``key``'s row, now or as soon as a refresh brings it."""
        if key in self._cells:
            self.move_cursor(row=self._keys.index(key), animate=False)
        else:
            self._wanted = key

    def sync(self, rows: Sequence[Row]) -> None:
        """Show ``rows`` in this order, touching only what changed."""
        keys = [key for key, _ in rows]
        if keys != self._keys:
            self._rebuild(rows)
            return
        column_keys = [key for key, _ in self._columns]
        for key, cells in rows:
            old = self._cells[key]
            if old == cells:
                continue
            for column, (before, after) in enumerate(zip(old, cells, strict=True)):
                if before != after:
                    # Measuring a column means measuring all its rows: only when it must grow.
                    column_key = ColumnKey(column_keys[column])
                    wider = self._widen(column_key, after)
                    self.update_cell(key, column_key, after, update_width=wider)
            self._cells[key] = cells

    def _rebuild(self, rows: Sequence[Row]) -> None:
        selected = self.selected_key
        self.clear()
        self._keys = [key for key, _ in rows]
        self._cells = dict(rows)
        column_keys = [ColumnKey(key) for key, _ in self._columns]
        for key, cells in rows:
            for column_key, cell in zip(column_keys, cells, strict=True):
                self._widen(column_key, cell)
            self.add_row(*cells, key=key)
        if self._wanted in self._cells:
            selected, self._wanted = self._wanted, None
        if selected in self._cells:
            self.move_cursor(row=self._keys.index(selected), animate=False)

    def _widen(self, column_key: ColumnKey, cell: Cell) -> bool:
        """Make the column wide enough for ``cell`` at once; return whether it grew.

        DataTable measures a grown column only when it is next idle, and its rendering
        caches do not know about widths: a paint in between (of the screen behind a dialog,
        say) kept the cell cut to the old width until some cell changed again, which for a
        job that has ended is never (``18/10`` shown for 18/100).
        """
        column = self.columns[column_key]
        width = _width(cell)
        if width <= column.content_width:
            return False
        column.content_width = width
        return True


def _width(cell: Cell) -> int:
    return cell.cell_len if isinstance(cell, Text) else cell_len(cell)
