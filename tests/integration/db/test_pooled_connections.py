"""The broker's PostgreSQL pool keeps a healthy connection and replaces one the server has ended, at checkout.

The check costs no round trip (``app.db``): a request checks a connection out twice (its two transactions
around the Vault call), and a ping each time was two of a lease's ten round trips. These pin both halves:
a live connection is handed out again as it is (the same server process), a terminated one never reaches a
statement.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text

from app.db import make_engine

pytestmark = pytest.mark.postgres


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    made = make_engine(postgres_url, pool_size=1)
    yield made
    made.dispose()


def _server_pid(engine: Engine) -> int:
    with engine.begin() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_healthy_pooled_connection_is_used_again(engine: Engine) -> None:
    first = _server_pid(engine)
    assert [_server_pid(engine) for _ in range(5)] == [first] * 5


def test_a_connection_the_server_ended_is_replaced_before_any_statement(
    engine: Engine, postgres: dict[str, Any]
) -> None:
    ended = _server_pid(engine)
    with psycopg.connect(**{**postgres, "dbname": "postgres"}, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (ended,))
        deadline = time.monotonic() + 5  # until it is gone: its goodbye is then on the pooled socket
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (ended,)).fetchone():
            assert time.monotonic() < deadline, "the terminated backend did not end"
            time.sleep(0.01)

    replacement = _server_pid(engine)  # would raise OperationalError on the dead connection

    assert replacement != ended
    assert _server_pid(engine) == replacement
