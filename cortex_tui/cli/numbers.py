"""Numbers on the command line: argparse types that say what is wrong."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def whole_number(least: int) -> Callable[[str], int]:
    """Return an argparse type that takes a whole number of at least ``least``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
        return value

    return parse


#: A count of at least 1 (workers, a batch size).
positive_int = whole_number(1)
#: An index, from 0 (a batch's, an item's).
index = whole_number(0)


def seconds(text: str) -> float:
    """An argparse type for a number of seconds: finite and above 0 (``1.5``, ``3600``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds above 0, got {text}")
    return value
