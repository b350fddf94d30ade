"""Checking a home before start-up: a damaged database is a clear error, never a fresh start.

A home whose ``cortex.db`` is not a SQLite database, is cut short, or cannot be read
stops start-up with one line naming the file and what to do. So does a home that has
deployed APIs or job logs but an empty or missing database: starting empty there
would orphan every snapshot and log.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from orchestrator.errors import OrchestratorError

_HEADER = b"SQLite format 3\x00"


class DamagedHome(OrchestratorError):
    """The home cannot be started from as it is (the message says why and what to do)."""


def check(home: Path) -> None:
    """Raise ``DamagedHome`` if ``home``'s database is damaged or missing where it matters."""
    db = home / "cortex.db"
    if db.exists() and not db.is_file():
        raise DamagedHome(f"{db} is not a file{_advice(db)}")
    size = db.stat().st_size if db.exists() else None
    if not size:
        _refuse_if_used(home, db, "is missing" if size is None else "is empty (0 bytes)")
        return
    with open(db, "rb") as f:
        head = f.read(100)
    if not head.startswith(_HEADER):
        raise DamagedHome(f"{db} is not a SQLite database{_advice(db)}")
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(head[28:32], "big")
    short = bool(pages) and size < pages * page_size
    # With a write-ahead log the missing pages may live there (a crash mid-checkpoint leaves
    # the main file short): then SQLite itself reads every page to judge.
    wal = home / "cortex.db-wal"
    if short and wal.exists() and wal.stat().st_size > 0:
        short = not _every_page_reads(db)
    if len(head) < 100 or short:
        raise DamagedHome(
            f"{db} is cut short ({size} bytes; its header says {pages * page_size}){_advice(db)}"
        )
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            if "job" in tables:
                conn.execute("SELECT max(seq) FROM job").fetchone()
        conn.close()
    except sqlite3.DatabaseError as e:
        raise DamagedHome(f"{db} cannot be read ({e}){_advice(db)}") from None


def _every_page_reads(db: Path) -> bool:
    """Return whether SQLite reads the whole database (with its log) without an error."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return bool(conn.execute("PRAGMA quick_check").fetchone()[0] == "ok")
    except sqlite3.DatabaseError:
        return False


def _refuse_if_used(home: Path, db: Path, what: str) -> None:
    used = [name for name in ("apis", "logs") if _has_entries(home / name)]
    if used:
        raise DamagedHome(
            f"{db} {what}, but this home has {' and '.join(used)} from an earlier"
            f" installation; restore the database from a backup (sqlite3 {db} '.backup ...'"
            " makes one), or move the home aside to start afresh"
        )


def _has_entries(path: Path) -> bool:
    try:
        return any(os.scandir(path))
    except OSError:
        return False


def _advice(db: Path) -> str:
    return (
        f": restore it from a backup (one made with sqlite3 {db} '.backup FILE'), or move it"
        " aside (and its -wal and -shm files) to start with an empty installation"
    )
