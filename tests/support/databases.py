"""Fresh, migrated databases for tests: one template per test session, one copy per test.

PostgreSQL: the template database is migrated once, and each test gets ``CREATE DATABASE ... TEMPLATE``
(tens of milliseconds). SQLite: the migrated file is copied. Both run the real Alembic migrations.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

from app.migrate import upgrade_database

PG_HOST = os.environ.get("TRANSOM_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("TRANSOM_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("TRANSOM_TEST_PG_USER", "postgres")


def postgres_available() -> str | None:
    """None when PostgreSQL answers; else why not."""
    try:
        with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL at {PG_HOST}:{PG_PORT} does not answer ({type(exc).__name__})"


def pg_url(dbname: str) -> str:
    return f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{dbname}"


def _admin() -> psycopg.Connection:
    return psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True)


class PostgresDatabases:
    def __init__(self) -> None:
        self.prefix = f"transom_test_{uuid.uuid4().hex[:8]}"
        self.template = f"{self.prefix}_template"
        self.created: list[str] = []
        with _admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.template)))
        upgrade_database(pg_url(self.template))

    def fresh(self) -> str:
        name = f"{self.prefix}_{len(self.created)}"
        with _admin() as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(self.template)
                )
            )
        self.created.append(name)
        return pg_url(name)

    def empty(self) -> str:
        """An unmigrated database, for migration tests."""
        name = f"{self.prefix}_{len(self.created)}"
        with _admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.created.append(name)
        return pg_url(name)

    def drop_all(self) -> None:
        with _admin() as conn:
            for name in [*self.created, self.template]:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


class SqliteDatabases:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.template = directory / "template.db"
        upgrade_database(f"sqlite:///{self.template}")
        self.count = 0

    def fresh(self) -> str:
        self.count += 1
        target = self.directory / f"test_{self.count}.db"
        shutil.copyfile(self.template, target)
        return f"sqlite:///{target}"

    def empty(self) -> str:
        self.count += 1
        return f"sqlite:///{self.directory / f'empty_{self.count}.db'}"
