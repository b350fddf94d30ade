"""``--watch``: render a view again every few seconds, in place on a terminal."""

from __future__ import annotations

import re
import shutil
import sys
import time
from collections.abc import Callable
from datetime import datetime

from cortex_tui.errors import CortexTuiError

WATCH_INTERVAL_S = 2.0
#: The lines above the view on a terminal: the header, then a blank line.
WATCH_HEADER_LINES = 2
_CLEAR = "\x1b[H\x1b[2J"
_ESCAPES = re.compile(r"\x1b\[[0-9;]*m")


def fit(text: str, width: int) -> str:
    """Cut each line of ``text`` to ``width`` visible characters, so that none wraps (a line
    cut short loses its colors)."""
    lines = []
    for line in text.splitlines():
        plain = _ESCAPES.sub("", line)
        lines.append(line if len(plain) <= width else plain[: width - 1] + "…")
    return "\n".join(lines)


def show(
    render: Callable[[], str],
    watch: bool,
    title: str,
    ended: Callable[[], int | None] = lambda: None,
) -> int:
    """Print ``render()`` once, or every two seconds with ``watch``, until Ctrl-C or until
    ``ended()`` gives an exit status (a watched job that ended: its last view stays).

    The first render's errors propagate (a typo fails at once); later ones are shown in
    place of the view and watching goes on, e.g. while the server restarts.
    """
    text = render()
    if not watch:
        print(text)
        return 0
    tty = sys.stdout.isatty()
    try:
        while True:
            if tty:
                clock = datetime.now().strftime("%H:%M:%S")
                header = f"{clock}  every {WATCH_INTERVAL_S:.0f}s: {title}   (Ctrl-C to stop)"
                width = shutil.get_terminal_size().columns
                # No newline after the last line: on a full screen it would scroll the
                # header away.
                sys.stdout.write(f"{_CLEAR}{fit(header, width)}\n\n{fit(text, width)}")
            else:
                sys.stdout.write(f"{text}\n\n")
            sys.stdout.flush()
            if (status := ended()) is not None:
                if tty:
                    print()  # end the view's last line: what follows goes below it
                return status
            time.sleep(WATCH_INTERVAL_S)
            try:
                text = render()
            except CortexTuiError as e:
                text = f"error: {e}"
    except KeyboardInterrupt:
        if tty:
            print()
        return 0
