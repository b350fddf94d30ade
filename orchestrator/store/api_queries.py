"""Statements on the ``api`` table: deployed APIs and their current versions."""

from __future__ import annotations

from sqlmodel import Session, select

from orchestrator.store.models import Api


def get(session: Session, name: str) -> Api | None:
    """Return the deployed API called ``name``, or None."""
    return session.get(Api, name)


def all_by_name(session: Session) -> list[Api]:
    """Return every deployed API, by name."""
    return list(session.exec(select(Api).order_by(Api.name)).all())


def save(session: Session, api: Api) -> None:
    """Insert or update an API's row."""
    session.add(api)
    session.commit()
