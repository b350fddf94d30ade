"""Saving what the server streams (results, logs) to a new file, whole or not at all."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path


def free_path(directory: Path, name: str) -> Path:
    """Reserve and return ``directory/name``, or ``name-1``, ``name-2``… when it is taken.

    The name is taken at once (an empty file, created only if none exists), so two saves
    at the same moment never pick the same one.
    """
    path = directory / name
    stem, suffix = path.stem, path.suffix
    number = 0
    while True:
        try:
            path.open("x").close()
            return path
        except FileExistsError:
            number += 1
            path = directory / f"{stem}-{number}{suffix}"


def write_lines(path: Path, lines: Iterable[str]) -> int:
    """Write ``lines`` (without newlines) to ``path``; return how many.

    The lines go to ``path.part`` first, renamed over ``path`` (reserved by ``free_path``)
    when all are written, so an error halfway (the server gone, the disk full) leaves
    neither a file that looks complete nor the reservation.
    """
    part = path.with_name(path.name + ".part")
    count = 0
    done = False
    try:
        with part.open("w", encoding="utf-8") as out:
            for line in lines:
                out.write(line + "\n")
                count += 1
        part.replace(path)
        done = True
    finally:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
        if not done:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    return count
