"""Saving what the server streams (results, logs) to a new file, whole or not at all."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path


def free_path(directory: Path, name: str) -> Path:
    """Return ``directory/name``, or ``name-1``, ``name-2``… when it is taken."""
    path = directory / name
    stem, suffix = path.stem, path.suffix
    number = 0
    while path.exists():
        number += 1
        path = directory / f"{stem}-{number}{suffix}"
    return path


def write_lines(path: Path, lines: Iterable[str]) -> int:
    """Write ``lines`` (without newlines) to ``path``; return how many.

    The lines go to ``path.part`` first, renamed when all are written, so an error
    halfway (the server gone, the disk full) leaves no file that looks complete.
    """
    part = path.with_name(path.name + ".part")
    count = 0
    try:
        with part.open("w", encoding="utf-8") as out:
            for line in lines:
                out.write(line + "\n")
                count += 1
        part.replace(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
    return count
