"""Reading a project directory for deploy: only inside it, bounded, loops refused.

``scan`` walks the project without following links and lists what a snapshot holds:
files, folders, and symlinks whose target resolves inside the project. Those links are
copied as links (relative, so they resolve inside the snapshot); a link that leaves the
project, dangles, or loops is refused with the link's name, before anything is copied.
The files' total size is capped. ``copy`` writes a snapshot from the listing, into a
temporary folder that is removed if anything fails.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from orchestrator.errors import ApiSpecError
from orchestrator.files import opened_exactly

SKIP = frozenset(
    {".git", "__pycache__", ".venv", "venv", ".mypy_cache", ".pytest_cache", "node_modules"}
)


class Kind(StrEnum):
    """What a snapshot entry is."""

    FILE = "file"
    DIR = "dir"
    LINK = "link"


@dataclass(frozen=True)
class Entry:
    """One thing in a project: a file, a folder, or a link (with its relative target)."""

    path: str  # relative to the project, "/"-separated
    kind: Kind
    target: str = ""  # links only: the target relative to the link's folder


@dataclass(frozen=True)
class Listing:
    """What a project's snapshot holds, in walking order, and how large its files are."""

    root: Path
    entries: list[Entry]
    size: int


def scan(root: Path, max_bytes: int) -> Listing:
    """List a project for a snapshot; raise ``ApiSpecError`` naming what cannot be copied."""
    entries: list[Entry] = []
    size = 0
    for folder, dirs, files in os.walk(root, followlinks=False, onerror=_walk_error):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if d not in SKIP)
        for name in [*dirs, *sorted(files)]:
            path = here / name
            relative = path.relative_to(root).as_posix()
            if name.endswith(".pyc"):
                continue
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                entries.append(_link(root, path, relative))
                if name in dirs:
                    dirs.remove(name)  # a link is copied as a link, never walked
            elif stat.S_ISDIR(mode):
                entries.append(Entry(relative, Kind.DIR))
            elif stat.S_ISREG(mode):
                size += os.lstat(path).st_size
                if size > max_bytes:
                    raise ApiSpecError(
                        f"{root}: the project is larger than {_mib(max_bytes)} MiB (the"
                        " max_project_bytes setting); leave data out of the project directory"
                        " (read it as a job source instead) or raise the setting"
                    )
                entries.append(Entry(relative, Kind.FILE))
            # sockets, fifos and devices are not part of a snapshot
    return Listing(root, entries, size)


def digest(listing: Listing) -> str:
    """Return a hash of the listing's names, link targets and file contents."""
    hasher = hashlib.sha256()
    for entry in listing.entries:
        if entry.kind is Kind.DIR:
            continue
        hasher.update(f"{entry.kind}\0{entry.path}\0{entry.target}\0".encode())
        if entry.kind is Kind.FILE:
            with open(listing.root / entry.path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    hasher.update(block)
    return hasher.hexdigest()


def copy(listing: Listing, destination: Path) -> None:
    """Write the listing's snapshot to ``destination`` (which must not exist yet)."""
    tmp = destination.with_name(destination.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        for entry in listing.entries:
            target = tmp / entry.path
            if entry.kind is Kind.DIR:
                target.mkdir()
            elif entry.kind is Kind.LINK:
                os.symlink(entry.target, target)
            else:  # this user's only, whatever the source's mode (executable bits kept)
                _copy_file(listing.root, entry.path, target)
        tmp.rename(destination)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _copy_file(root: Path, relative: str, target: Path) -> None:
    """Copy one listed file, refusing one that a symlink has replaced since the listing."""
    source = str(root / relative)
    stream = opened_exactly(source)
    if stream is None:
        raise _refused(relative, "became a symlink while the project was copied")
    with stream, open(target, "wb") as out:
        shutil.copyfileobj(stream, out, 1 << 20)
        executable = os.fstat(stream.fileno()).st_mode & 0o100
    os.chmod(target, 0o700 if executable else 0o600)


def _link(root: Path, path: Path, relative: str) -> Entry:
    """Return a link entry whose target stays inside ``root``, or refuse the link."""
    try:
        real = path.resolve(strict=True)
    except RuntimeError as e:  # Python 3.11 reports a loop this way
        raise _refused(relative, f"is a symlink loop ({e})") from None
    except OSError as e:
        raise _refused(relative, f"is a symlink that resolves nowhere ({e.strerror})") from None
    if real != root and not real.is_relative_to(root):
        raise _refused(
            relative,
            f"is a symlink to {os.readlink(path)}, outside the project: deploy copies only"
            " what is inside the project directory (copy the file in, or read it as a job"
            " source)",
        )
    return Entry(relative, Kind.LINK, os.path.relpath(real, Path(os.path.realpath(path.parent))))


def _refused(relative: str, why: str) -> ApiSpecError:
    return ApiSpecError(f"{relative}: {why}")


def _walk_error(error: OSError) -> None:
    raise ApiSpecError(f"{error.filename}: cannot be read ({error.strerror})")


def _mib(size: int) -> str:
    return f"{size / (1 << 20):g}"
