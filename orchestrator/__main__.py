"""``python -m orchestrator [--host H] [--port P] [--backend B] [--home DIR]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from orchestrator.server import serve
from orchestrator.settings import DEFAULT_HOST, DEFAULT_PORT, Settings, default_home


def main() -> None:
    """Parse flags and serve."""
    parser = argparse.ArgumentParser(prog="python -m orchestrator")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--backend", default="process")
    parser.add_argument("--home", type=Path, default=None)
    args = parser.parse_args()
    serve(Settings(home=args.home or default_home(), host=args.host, port=args.port,
                   backend=args.backend))


if __name__ == "__main__":
    main()
