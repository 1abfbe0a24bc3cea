"""Request-scoped plumbing for views: the runtime, one database session per request, the caller's actor.

Views build services from these; services themselves never touch Flask.
"""

from __future__ import annotations

from typing import Any, cast

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from app.audit.ledger import Actor, Ledger
from app.config_snapshot.snapshot import ConfigSnapshot
from app.runtime import Runtime, runtime_of


def runtime() -> Runtime:
    return runtime_of(current_app)


def db_session() -> Session:
    """The request's session. It commits only when a view calls ``commit()``; teardown closes it."""
    session = g.get("db_session")
    if session is None:
        session = runtime().sessions()
        g.db_session = session
    return cast(Session, session)


def config_snapshot() -> ConfigSnapshot:
    """The decision configuration for this request: read once (one query while the process's copy is
    current), so verification and decision see the same generation."""
    snapshot = g.get("config_snapshot")
    if snapshot is None:
        snapshot = runtime().snapshots.current(db_session())
        g.config_snapshot = snapshot
    return cast(ConfigSnapshot, snapshot)


def ledger() -> Ledger:
    return Ledger(db_session(), runtime().clock)


def current_actor() -> Actor:
    actor = g.get("actor")
    if actor is None:
        raise RuntimeError("no authenticated caller on this request")
    return cast(Actor, actor)


def _close_session(_exc: BaseException | None) -> None:
    session: Any = g.pop("db_session", None)
    if session is not None:
        session.close()  # rolls back whatever was not committed


def init_app(app: Flask) -> None:
    app.teardown_appcontext(_close_session)
