"""``python -m cortex_tui``: the ``cortex-tui`` command line."""

from __future__ import annotations

import sys

from cortex_tui.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
