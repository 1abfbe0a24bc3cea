"""The ledger on PostgreSQL: one linear chain under concurrent writers, tampering found, edits refused."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, delete, func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from app.audit.ledger import Actor, Ledger, verify_chain
from app.audit.models import AuditEvent
from app.clock import SystemClock
from app.db import make_engine, make_session_factory, transaction
from tests.integration.audit.ledger_fill import fill

pytestmark = pytest.mark.postgres

WRITERS = 16
GRANTS = 1000


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    engine = make_engine(postgres_url, pool_size=WRITERS)
    yield engine
    engine.dispose()


def _superuser(url: str) -> psycopg.Connection[Any]:
    """A connection outside the application's, as a DBA (or an attacker with DBA rights) would have."""
    parsed = make_url(url)
    return psycopg.connect(
        host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database, autocommit=True
    )


def _tamper(url: str, sql: str, *params: Any) -> None:
    with _superuser(url) as conn:
        conn.execute("ALTER TABLE audit_events DISABLE TRIGGER USER")
        try:
            conn.execute(sql, params)
        finally:
            conn.execute("ALTER TABLE audit_events ENABLE TRIGGER USER")


def _column(engine: Engine, column: str, event_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            text(f"SELECT {column}::text FROM audit_events WHERE id = :id"), {"id": event_id}
        ).scalar()


def _verify(engine: Engine) -> Any:
    with make_session_factory(engine)() as session:
        return verify_chain(session)


def test_concurrent_grants_build_one_chain(engine: Engine) -> None:
    sessions = make_session_factory(engine)
    clock = SystemClock()

    def grant(n: int) -> int:
        with transaction(sessions) as session:
            event = Ledger(session, clock).append(
                "lease.granted",
                actor=Actor("ci", f"acme/payments@run-{n}"),
                lease_id=f"lse_{n:06d}",
                policy="deploy-prod",
                secret="prod-db",
                repository="acme/payments",
                ref="refs/heads/main",
                branch="main",
                decision="allow",
                details={"identity": {"pipeline_id": str(n)}, "ttl": 900},
            )
            return event.id

    with ThreadPoolExecutor(WRITERS) as pool:
        ids = list(pool.map(grant, range(GRANTS)))

    assert sorted(ids) == list(range(1, GRANTS + 1))
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == GRANTS
        leases = set(session.scalars(select(AuditEvent.lease_id)))
    assert leases == {f"lse_{n:06d}" for n in range(GRANTS)}
    result = _verify(engine)
    assert result.ok and result.checked == GRANTS


def _flip_hex(column: str, position: int) -> str:
    """SQL for ``column`` with its hex digit at ``position`` changed to the next one."""
    digit = f"translate(substr({column}, {position}, 1), '0123456789abcdef', '123456789abcdef0')"
    return f"overlay({column} placing {digit} from {position} for 1)"


# (column, SQL expression that changes one byte of it)
TAMPERINGS = [
    ("action", "overlay(action placing 'x' from 1 for 1)"),
    ("actor_id", "overlay(actor_id placing 'X' from 3 for 1)"),
    ("repository", "overlay(repository placing 'b' from 1 for 1)"),
    ("branch", "overlay(branch placing 'M' from 1 for 1)"),
    ("details", "overlay(details::text placing 'X' from 3 for 1)::json"),  # the first key's first letter
    ("reasons", '\'[{"code": "x"}]\'::json'),
    ("at", "at + interval '1 second'"),
    ("hash", _flip_hex("hash", 5)),
    ("prev_hash", _flip_hex("prev_hash", 9)),
]


@pytest.mark.parametrize(("column", "expression"), TAMPERINGS, ids=[t[0] for t in TAMPERINGS])
@pytest.mark.parametrize("victim", [1, 137, 300])
def test_changing_one_byte_of_any_event_is_found_at_that_event(
    engine: Engine, postgres_url: str, column: str, expression: str, victim: int
) -> None:
    fill(engine, 300, chunk=100)
    assert _verify(engine).ok
    before = _column(engine, column, victim)
    _tamper(postgres_url, f"UPDATE audit_events SET {column} = {expression} WHERE id = %s", victim)
    assert _column(engine, column, victim) != before
    result = _verify(engine)
    assert not result.ok
    assert result.first_bad_id == victim


def test_the_application_connection_cannot_update_or_delete_events(engine: Engine) -> None:
    fill(engine, 10)
    sessions = make_session_factory(engine)
    for statement in (
        update(AuditEvent).where(AuditEvent.id == 5).values(action="lease.nothing"),
        delete(AuditEvent).where(AuditEvent.id == 10),
        text("TRUNCATE audit_events"),
    ):
        with sessions() as session, pytest.raises(DBAPIError, match="append-only"):
            session.execute(statement)
            session.commit()
    result = _verify(engine)
    assert result.ok and result.checked == 10


def test_removing_the_newest_event_is_found(engine: Engine, postgres_url: str) -> None:
    last = fill(engine, 50)
    _tamper(postgres_url, "DELETE FROM audit_events WHERE id = %s", last)
    result = _verify(engine)
    assert not result.ok
    assert result.first_bad_id == last
    assert result.checked == last - 1


def test_removing_an_event_in_the_middle_is_found(engine: Engine, postgres_url: str) -> None:
    fill(engine, 50)
    _tamper(postgres_url, "DELETE FROM audit_events WHERE id = %s", 20)
    result = _verify(engine)
    assert not result.ok and result.first_bad_id == 21
