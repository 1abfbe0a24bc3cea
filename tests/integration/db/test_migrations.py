"""The schema comes only from Alembic, and the models never drift from it."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, pool, text

from app.migrate import alembic_config
from app.models import Base
from tests.support.databases import PostgresDatabases, SqliteDatabases

TABLES = {
    "api_tokens",
    "approval_requests",
    "approval_votes",
    "audit_events",
    "config_generation",
    "freezes",
    "issuers",
    "leases",
    "ledger_checkpoints",
    "ledger_hashes",
    "ledger_leaves",
    "ledger_pending",
    "notifications",
    "policies",
    "secrets",
    "seen_tokens",
    "windows",
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest) -> str:
    databases: SqliteDatabases | PostgresDatabases = request.getfixturevalue(f"{request.param}_databases")
    return databases.empty()


def _tables(url: str) -> set[str]:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def _drift(url: str) -> list[object]:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(empty_database: str) -> None:
    config = alembic_config(empty_database)
    command.upgrade(config, "head")
    assert _tables(empty_database) == TABLES
    command.downgrade(config, "base")
    assert _tables(empty_database) == set()
    command.upgrade(config, "head")
    assert _tables(empty_database) == TABLES


def test_models_match_the_migrations(empty_database: str) -> None:
    command.upgrade(alembic_config(empty_database), "head")
    assert _drift(empty_database) == []


_OLD_EVENT = (
    "INSERT INTO audit_events (id, at, action, actor_type, actor_id, reasons, details, prev_hash, hash) "
    "VALUES (:id, :at, 'policy.created', 'admin', 'alice', '[]', :details, :prev, :hash)"
)
_NEW_EVENT = (
    "INSERT INTO audit_events (at, action, actor_type, actor_id, reasons, details) "
    "VALUES (:at, 'policy.updated', 'admin', 'alice', '[]', '{}')"
)


def test_the_log_takes_over_the_chains_events_in_id_order(empty_database: str) -> None:
    """0007: events the hash chain held wait for the sequencer in id order; new events take the next ids
    and are queued by the database itself; a downgrade chains them all again."""
    config = alembic_config(empty_database)
    command.upgrade(config, "0006")
    engine = create_engine(empty_database, poolclass=pool.NullPool)
    at = "2026-12-01 08:00:00"
    with engine.begin() as connection:
        for number in (1, 2):
            connection.execute(
                text(_OLD_EVENT),
                {
                    "id": number,
                    "at": at,
                    "details": f'{{"n": {number}}}',
                    "prev": "0" * 64,
                    "hash": f"{number:064}",
                },
            )
        connection.execute(text("UPDATE audit_chain_head SET last_id = 2, last_hash = :h"), {"h": f"{2:064}"})
    command.upgrade(config, "head")
    with engine.begin() as connection:
        connection.execute(text(_NEW_EVENT), {"at": at})
        ids = connection.execute(text("SELECT id FROM audit_events ORDER BY id")).scalars().all()
        queued = (
            connection.execute(text("SELECT event_id FROM ledger_pending ORDER BY event_id")).scalars().all()
        )
    assert ids == [1, 2, 3]
    assert queued == [1, 2, 3]

    command.downgrade(config, "0006")
    with engine.connect() as connection:
        chain = connection.execute(text("SELECT id, prev_hash, hash FROM audit_events ORDER BY id")).all()
        head = connection.execute(text("SELECT last_id, last_hash FROM audit_chain_head")).one()
    engine.dispose()
    assert [row.id for row in chain] == [1, 2, 3]
    assert chain[0].prev_hash == "0" * 64
    assert [row.prev_hash for row in chain[1:]] == [row.hash for row in chain[:-1]]
    assert tuple(head) == (3, chain[-1].hash)


def test_an_existing_database_gains_the_configuration_generation(empty_database: str) -> None:
    config = alembic_config(empty_database)
    command.upgrade(config, "0001")  # as the first release left it
    command.upgrade(config, "head")
    engine = create_engine(empty_database, poolclass=pool.NullPool)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id, generation FROM config_generation")).all()
    engine.dispose()
    assert rows == [(1, 0)]
