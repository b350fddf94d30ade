"""Statements on the ``api`` table: deployed APIs and their current versions."""

from __future__ import annotations

from sqlalchemy.engine import Connection
from sqlmodel import Session, select

from orchestrator.store.models import Api


def get(session: Session, name: str) -> Api | None:
    """Return the API called ``name``, deployed or deleted (see ``Api.deleted_time``), or None."""
    return session.get(Api, name)


def all_by_name(session: Session) -> list[Api]:
    """Return every deployed (not deleted) API, by name."""
    return list(
        session.exec(
            select(Api).where(Api.deleted_time.is_(None)).order_by(Api.name)  # type: ignore[union-attr]
        ).all()
    )


def save(session: Session, api: Api) -> None:
    """Insert or update an API's row."""
    session.add(api)
    session.commit()


def deployed_version(session: Session, name: str) -> str | None:
    """Return the ``api_id`` the API is deployed as, or None if it is not (or deleted)."""
    api = session.exec(
        select(Api.api_id).where(Api.name == name, Api.deleted_time.is_(None))  # type: ignore[union-attr]
    ).first()
    return None if api is None else str(api)


def mark_deleted(conn: Connection, name: str, now: float) -> None:
    """Mark the API deleted: it takes no new job, and its jobs stay readable."""
    conn.exec_driver_sql("UPDATE api SET deleted_time = ? WHERE name = ?", (now, name))


def forget_deleted_without_jobs(conn: Connection) -> list[str]:
    """Delete the rows of deleted APIs that have no job left; return their names."""
    rows = conn.exec_driver_sql(
        "DELETE FROM api WHERE deleted_time IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM job WHERE job.api_name = api.name) RETURNING name"
    ).all()
    return sorted(str(row[0]) for row in rows)
