"""The ``-o/--output`` option shared by commands, and JSON printing."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_output_option(parser: argparse.ArgumentParser) -> None:
    """Add ``-o/--output {pretty,json}`` to a command."""
    parser.add_argument(
        "-o",
        "--output",
        choices=("pretty", "json"),
        default="pretty",
        help="json: print the server's response as JSON instead of a table",
    )


def format_json(document: Any) -> str:
    """Return a server document as indented JSON."""
    return json.dumps(document, indent=2, ensure_ascii=False)


def print_json(document: Any) -> None:
    """Print a server document as indented JSON."""
    print(format_json(document))


def note(line: str) -> None:
    """Tell the user something worth knowing that is not an error, on stderr."""
    print(f"note: {line}", file=sys.stderr)
