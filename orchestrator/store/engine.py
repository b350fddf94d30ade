"""The SQLite store: engine set-up (WAL, busy timeout) and serialised writes.

SQLite allows one writer at a time. Every write in this process goes through
``Store.write()``, which holds one lock, so writers queue in Python instead of
failing with ``database is locked``; readers run concurrently under WAL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, SQLModel, create_engine

from orchestrator.store import models  # noqa: F401  (registers the tables)


def _configure_connection(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _add_new_columns(engine: Engine) -> None:
    """Add the columns (and indexes) a newer version gave existing tables.

    ``create_all`` makes missing tables only; a home made by an older version keeps its
    rows, and each column it lacks is added (new columns have a server default).
    """
    with engine.begin() as conn:
        for table in SQLModel.metadata.sorted_tables:
            have = {row[1] for row in conn.exec_driver_sql(f"PRAGMA table_info({table.name})")}
            for column in table.columns:
                if column.name in have:
                    continue
                default = getattr(column.server_default, "arg", None)
                kind = column.type.compile(engine.dialect)
                clause = f" NOT NULL DEFAULT {default}" if default is not None else ""
                conn.exec_driver_sql(
                    f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}{clause}"
                )
            for index in table.indexes:
                index.create(conn, checkfirst=True)


class Store:
    """Owns the engine and the write lock."""

    def __init__(self, db_path: Path) -> None:
        self.engine: Engine = create_engine(
            f"sqlite:///{db_path}",
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=16,
            max_overflow=32,
        )
        event.listen(self.engine, "connect", _configure_connection)
        self._lock = threading.RLock()
        SQLModel.metadata.create_all(self.engine)
        _add_new_columns(self.engine)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """Yield a connection in a write transaction, committed on success."""
        with self._lock, self.engine.begin() as conn:
            yield conn

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Yield an ORM session whose commit is serialised with other writes."""
        with self._lock, Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """Yield a connection for reads (no lock: WAL readers never block)."""
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """Yield an ORM session for reads."""
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    def compact(self) -> str | None:
        """Give the database's free pages back to the file system: ``VACUUM``, then a
        checkpoint that empties the write-ahead log (``wal_checkpoint(TRUNCATE)``).

        VACUUM rewrites the whole file, so it holds the write lock; readers go on. It needs
        room for a copy of the database: on a nearly full disk it fails, and the database
        stays as it was (SQLite rolls the VACUUM back).

        Returns:
            None, or why compacting failed (SQLite's message, e.g. ``database or disk is
            full``).
        """
        try:
            with self._lock, self.engine.connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                conn.exec_driver_sql("VACUUM")
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        except DBAPIError as e:
            return str(e.orig)
        return None

    def close(self) -> None:
        """Dispose of the engine's connections."""
        self.engine.dispose()
