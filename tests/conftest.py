"""Fixtures for every test tier: the real OpenBao server and PostgreSQL connection parameters.

- ``openbao`` (session): one ``bao server -dev`` for the whole run, stopped at the end.
- ``vault`` (function): that server, brought back up (resumed, restarted, unsealed) if an earlier test took it
  down, with its baseline setup in place: ``secret/`` (KV v2), the ``deploy-prod`` policy and, when PostgreSQL
  answers, the database engine with the role ``deployer``; after the test, the same again, so tests that take
  Vault down (they must use ``vault``) leave it up for the ones that use ``openbao`` directly.
- ``postgres`` (session): psycopg connection parameters; skips without PostgreSQL, fails instead when
  ``TRANSOM_REQUIRE_POSTGRES=1`` (CI).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.support.databases import PostgresDatabases, SqliteDatabases, postgres_available
from tests.support.openbao import OpenBaoServer

PG_PARAMS: dict[str, Any] = {
    "host": os.environ.get("TRANSOM_TEST_PG_HOST", "127.0.0.1"),
    "port": int(os.environ.get("TRANSOM_TEST_PG_PORT", "5432")),
    "user": os.environ.get("TRANSOM_TEST_PG_USER", "postgres"),
    "dbname": "postgres",
}


def _postgres_problem() -> str | None:
    try:
        with psycopg.connect(**PG_PARAMS, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL at {PG_PARAMS['host']}:{PG_PARAMS['port']} does not answer ({type(exc).__name__})"


@pytest.fixture(scope="session")
def postgres_problem() -> str | None:
    return _postgres_problem()


@pytest.fixture(scope="session")
def postgres(postgres_problem: str | None) -> dict[str, Any]:
    if postgres_problem:
        if os.environ.get("TRANSOM_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"TRANSOM_REQUIRE_POSTGRES=1 but {postgres_problem}")
        pytest.skip(postgres_problem)
    return dict(PG_PARAMS)


@pytest.fixture(scope="session")
def openbao(
    tmp_path_factory: pytest.TempPathFactory, postgres_problem: str | None
) -> Iterator[OpenBaoServer]:
    server = OpenBaoServer(log_dir=tmp_path_factory.mktemp("openbao"))
    pg = None if postgres_problem else PG_PARAMS
    server.ensure_baseline(pg)
    yield server
    server.stop()
    if pg is not None:
        server.drop_database_roles(pg)


@pytest.fixture
def vault(openbao: OpenBaoServer, postgres_problem: str | None) -> Iterator[OpenBaoServer]:
    pg = None if postgres_problem else PG_PARAMS
    openbao.ensure_baseline(pg)
    yield openbao
    openbao.ensure_baseline(pg)  # a test that stopped, paused or sealed it leaves it usable for the next


# --- migrated databases: SQLite and PostgreSQL -----------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_databases(tmp_path_factory: pytest.TempPathFactory) -> SqliteDatabases:
    return SqliteDatabases(tmp_path_factory.mktemp("sqlite"))


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    problem = postgres_available()
    if problem:
        if os.environ.get("TRANSOM_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"TRANSOM_REQUIRE_POSTGRES=1 but {problem}")
        pytest.skip(problem)
    databases = PostgresDatabases()
    yield databases
    databases.drop_all()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """A fresh migrated database; every test that uses it runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_databases").fresh()  # type: ignore[no-any-return]
    return request.getfixturevalue("postgres_databases").fresh()  # type: ignore[no-any-return]


@pytest.fixture
def postgres_url(postgres_databases: PostgresDatabases) -> str:
    """A fresh migrated PostgreSQL database, for tests about concurrency and locks."""
    return postgres_databases.fresh()
