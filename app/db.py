"""Database plumbing: the declarative base, a UTC datetime type, the engine, the session factory and the
global session listeners.

Plain SQLAlchemy 2 sessions (no Flask-SQLAlchemy), so requests, the CLI and the scheduler share one factory.
Who commits a session is one rule, in docs/ARCHITECTURE.md ("Who changes lease state, and who commits").
"""

from __future__ import annotations

import select
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on PostgreSQL (timestamptz) and SQLite (which drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC instant")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=NullPool,
            hide_parameters=True,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    # hide_parameters: a logged database error must not carry the statement's values.
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size, hide_parameters=True)
    event.listen(engine, "checkout", _refuse_dead_connection)
    return engine


def _refuse_dead_connection(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Replace a pooled connection the server has ended, as ``pool_pre_ping`` would, without its round trip.

    An idle connection in the pool has nothing to read: the server sends nothing unasked. So a socket that
    is readable (or hung up) at checkout holds the server's goodbye (a restart, ``pg_terminate_backend``, an
    idle timeout) and the connection is dead; the pool then discards it and connects again. Each request
    checks a connection out twice (its transactions release it around the Vault call), so the ping's two
    round trips were a fifth of a lease's database traffic (docs/BENCHMARKS.md, issue 14)."""
    if dbapi_connection.closed or dbapi_connection.broken or _readable(dbapi_connection.fileno()):
        raise DisconnectionError("the database server has closed this pooled connection")


def _readable(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Own transaction control, so BEGIN IMMEDIATE below takes the write lock up front: two writers then
    # queue on SQLite's busy timeout instead of failing with "database is locked" on upgrade.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin_immediate(connection: Any) -> None:
    if connection.get_execution_options().get(READ_ONLY_OPTION):
        connection.exec_driver_sql("BEGIN")  # a WAL snapshot: never blocks writers, however long it runs
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


READ_ONLY_OPTION = "transom_read_only"


def read_only(engine: Engine) -> Engine:
    """The same database for long reads (exports): on SQLite they must not hold the write lock."""
    return engine.execution_options(**{READ_ONLY_OPTION: True})


def make_session_factory(bind: Engine | Connection) -> sessionmaker[Session]:
    return sessionmaker(bind=bind, expire_on_commit=False)


def install_session_listeners() -> None:
    """Install the listeners every session of the process needs; each entry point calls this at start-up
    (the app factory, ``transom worker``), and calling it again changes nothing.

    One today: the configuration generation bump (``app/config_snapshot/generation.py``), without which
    replicas would keep deciding on a configuration that changed.
    """
    # Imported here: the configuration models it watches import ``Base`` from this module.
    from app.config_snapshot.generation import bump_on_configuration_change

    if not event.contains(Session, "before_flush", bump_on_configuration_change):
        event.listen(Session, "before_flush", bump_on_configuration_change)


@contextmanager
def committing(session: Session) -> Iterator[Session]:
    """One transaction on an existing session: committed when the block ends (read-only blocks too, so no
    lock outlives them), rolled back when it raises. For the lease operations, which own their caller's
    transactions because they call Vault between them (docs/ARCHITECTURE.md, "Who changes lease state, and
    who commits")."""
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    session.commit()


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on any exception."""
    with factory() as session, session.begin():
        yield session
