"""Local paths of job sources: listed by real path inside the source roots, opened exactly.

A job reads only inside its source roots (its API's project directory and the folders
of the ``source_roots`` setting). Every path is resolved first (``..``, percent-escapes
in a ``file://`` URL, symlinks), and a listed file that has become a link by the time it
is read is refused rather than followed.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlsplit

from orchestrator.errors import SourceError
from orchestrator.files import opened_exactly


class OutsideRoots(ValueError):
    """A local path resolves outside the source roots."""


def list_files(path: str, base_dir: Path | None, roots: list[Path] | None) -> list[str]:
    """List a local file, or every file under a local directory, sorted, by real path.

    Every path is resolved (``..``, percent-escapes, symlinks) and must lie inside one
    of ``roots`` (None: anywhere): a symlink that leads out of them is refused, like a
    path that does. Relative paths resolve against ``base_dir`` (None: the cwd).
    """
    given = _local_path(path, base_dir)
    root = Path(os.path.realpath(given))
    _check_inside(path, root, roots)
    if root.is_file():
        return [str(root)]
    if not root.is_dir():
        raise FileNotFoundError(errno.ENOENT, "does not exist", str(given))
    files = []
    for found in root.rglob("*"):
        real = Path(os.path.realpath(found))
        if real.is_file():
            _check_inside(f"{path} (through {found})", real, roots)
            files.append(str(real))
    return sorted(set(files))


def open_file(location: str) -> IO[bytes]:
    """Open a local file for reading bytes; a listed file must still be where it was.

    Files are listed by real path. The file is opened without following a final link,
    and what was opened is checked to be that path (through ``/proc/self/fd``), so a
    link swapped in for the file or for a folder above it since is refused, not followed.
    """
    stream = opened_exactly(location)
    if stream is None:
        raise SourceError(f"{location}: changed into a link after the job was submitted")
    return stream


def _local_path(path: str, base_dir: Path | None) -> Path:
    """Return the absolute, normalised local path of a plain path or file:// URL."""
    if path[:7].lower() == "file://":
        url = urlsplit(path)
        if url.netloc not in ("", "localhost"):
            raise ValueError(f"{path}: a file:// URL names an absolute path: file:///a/b")
        local = Path(unquote(url.path))
    else:
        local = Path(path)
        if not local.is_absolute():
            local = (base_dir or Path.cwd()) / local
    return Path(os.path.normpath(local))


def _check_inside(path: str, real: Path, roots: list[Path] | None) -> None:
    if roots is None or any(real == r or real.is_relative_to(r) for r in roots):
        return
    raise OutsideRoots(
        f"{path} resolves to {real}, outside the source roots ({', '.join(map(str, roots))}):"
        " a job reads files only inside its API's project directory and the folders the"
        " operator lists in the source_roots setting (cortex-tui up --set"
        " source_roots=/data,/mnt/shared, or serve --set)"
    )
