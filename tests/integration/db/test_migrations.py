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
    "audit_chain_head",
    "audit_events",
    "config_generation",
    "freezes",
    "issuers",
    "leases",
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


def test_the_chain_head_starts_at_genesis(empty_database: str) -> None:
    command.upgrade(alembic_config(empty_database), "head")
    engine = create_engine(empty_database, poolclass=pool.NullPool)
    with engine.connect() as connection:
        head = connection.execute(text("SELECT last_id, last_hash FROM audit_chain_head")).one()
    engine.dispose()
    assert head == (0, "0" * 64)


def test_an_existing_database_gains_the_configuration_generation(empty_database: str) -> None:
    config = alembic_config(empty_database)
    command.upgrade(config, "0001")  # as the first release left it
    command.upgrade(config, "head")
    engine = create_engine(empty_database, poolclass=pool.NullPool)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id, generation FROM config_generation")).all()
    engine.dispose()
    assert rows == [(1, 0)]
