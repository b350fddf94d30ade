"""A job's logs: one file per worker (plus the orchestrator's), read merged by time."""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterator
from pathlib import Path

_TS_LEN = len("2026-01-01T00:00:00.000000Z")


def log_files(log_dir: Path, worker: str | None = None) -> list[Path]:
    """Return a job's log files, or just one worker's (by short name, e.g. ``w0``)."""
    if not log_dir.is_dir():
        return []
    files = sorted(log_dir.glob("*.log"))
    if worker is not None:
        files = [f for f in files if f.stem == worker]
    return files


def _keyed(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """Key each line by its timestamp; an untagged line (a raw traceback) keeps the last key."""
    key = ""
    for line in lines:
        if len(line) > _TS_LEN and line[4] == "-" and line[_TS_LEN - 1] == "Z":
            key = line[:_TS_LEN]
        yield key, line


def read_merged(log_dir: Path, worker: str | None = None) -> Iterator[str]:
    """Yield every line of a job's logs, interleaved in time order."""
    handles = [
        open(path, encoding="utf-8", errors="replace")  # noqa: SIM115 (closed below)
        for path in log_files(log_dir, worker)
    ]
    try:
        for _, line in heapq.merge(*(_keyed(iter(h)) for h in handles), key=lambda kl: kl[0]):
            yield line if line.endswith("\n") else line + "\n"
    finally:
        for handle in handles:
            handle.close()


def in_chunks(lines: Iterator[str], size: int = 64 * 1024) -> Iterator[str]:
    """Join lines into chunks of about ``size`` characters.

    A streamed response hands each chunk to a thread; one chunk per line made a
    large log take minutes to download.
    """
    buffer: list[str] = []
    length = 0
    for line in lines:
        buffer.append(line)
        length += len(line)
        if length >= size:
            yield "".join(buffer)
            buffer, length = [], 0
    if buffer:
        yield "".join(buffer)


def follow(
    log_dir: Path,
    finished: Callable[[], bool],
    worker: str | None = None,
    poll_s: float = 0.25,
) -> Iterator[str]:
    """Yield the logs so far, then new lines as they are written, until ``finished()``.

    Each poll's new lines come in time order, joined into chunks.

    After the job ends, one more read drains what its workers wrote last.
    """
    offsets: dict[Path, int] = {}
    partial: dict[Path, str] = {}
    draining = False
    while True:
        fresh: list[tuple[str, str]] = []
        for path in log_files(log_dir, worker):
            with open(path, encoding="utf-8", errors="replace") as f:
                f.seek(offsets.get(path, 0))
                chunk = f.read()
                offsets[path] = f.tell()
            if not chunk:
                continue
            text = partial.pop(path, "") + chunk
            lines = text.split("\n")
            if lines[-1]:
                partial[path] = lines[-1]
            fresh.extend(_keyed(iter(line + "\n" for line in lines[:-1])))
        fresh.sort(key=lambda kl: kl[0])
        yield from in_chunks(line for _, line in fresh)
        if draining:
            for rest in partial.values():
                yield rest + "\n"
            return
        if finished():
            draining = True
            continue
        time.sleep(poll_s)
