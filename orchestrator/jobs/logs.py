"""A job's logs: one file per worker (plus the orchestrator's), read merged by time."""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

from anyio import to_thread

from orchestrator.context import Context
from orchestrator.status import JobStatus
from orchestrator.store import job_queries, worker_queries

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


class _Tail:
    """The unread end of a job's log files: what is new since the last read."""

    def __init__(self, log_dir: Path, worker: str | None) -> None:
        self.log_dir, self.worker = log_dir, worker
        self.offsets: dict[Path, int] = {}
        self.partial: dict[Path, str] = {}

    def grown(self) -> bool:
        """Return whether any log file has bytes not read yet (a few ``stat`` calls)."""
        for path in log_files(self.log_dir, self.worker):
            try:
                if path.stat().st_size != self.offsets.get(path, 0):
                    return True
            except OSError:
                continue
        return False

    def read_new(self) -> list[str]:
        """Return the new complete lines of every file, in time order, as chunks."""
        fresh: list[tuple[str, str]] = []
        for path in log_files(self.log_dir, self.worker):
            with open(path, encoding="utf-8", errors="replace") as f:
                f.seek(self.offsets.get(path, 0))
                chunk = f.read()
                self.offsets[path] = f.tell()
            if not chunk:
                continue
            text = self.partial.pop(path, "") + chunk
            lines = text.split("\n")
            if lines[-1]:
                self.partial[path] = lines[-1]
            fresh.extend(_keyed(iter(line + "\n" for line in lines[:-1])))
        fresh.sort(key=lambda kl: kl[0])
        return list(in_chunks(line for _, line in fresh))

    def rest(self) -> list[str]:
        """Return the unterminated last lines, once the writers are gone."""
        return [rest + "\n" for rest in self.partial.values()]


async def follow(
    log_dir: Path,
    finished: Callable[[], bool],
    worker: str | None = None,
    poll_s: float = 0.25,
    check_s: float = 1.0,
) -> AsyncIterator[str]:
    """Yield the logs so far, then new lines as they are written, until ``finished()``.

    Each poll's new lines come in time order, joined into chunks. While the log is idle
    the follower holds no thread (it sleeps on the event loop; files are read, and
    ``finished()`` asked every ``check_s``, on a thread only when needed), and a client
    that hangs up cancels it at its next await. After the job ends, one more read drains
    what its workers wrote last.
    """
    tail = _Tail(log_dir, worker)
    checked = 0.0
    while True:
        if tail.grown():
            for chunk in await to_thread.run_sync(tail.read_new):
                yield chunk
        now = time.monotonic()
        if now - checked >= check_s:
            checked = now
            if await to_thread.run_sync(finished):
                for chunk in await to_thread.run_sync(tail.read_new):
                    yield chunk
                for rest in tail.rest():
                    yield rest
                return
        await asyncio.sleep(poll_s)


def writers_gone(ctx: Context, job_id: str) -> bool:
    """Return whether nothing more will be written to the job's logs.

    That is when the job has ended and none of its workers is live any more (or the job
    is gone).
    """
    with ctx.store.read() as conn:
        status = job_queries.status_of(conn, job_id)
        live = worker_queries.live_count(conn, job_id)
    return status is None or (JobStatus(status).is_terminal and live == 0)
