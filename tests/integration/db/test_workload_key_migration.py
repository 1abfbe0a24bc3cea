"""Migration 0003: leases granted before it are owned by their whole identity, as new ones are
(docs/API.md, "the same workload"), so an upgrade does not leave a run-wide key that a sibling job
could still use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import create_engine, pool

from app.identity.workload import WorkloadIdentity
from app.migrate import alembic_config
from tests.support.databases import PostgresDatabases, SqliteDatabases

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
JOB_A = {
    "issuer": "github",
    "repository": "acme/payments",
    "repository_id": "672013998",
    "ref": "refs/heads/main",
    "environment": "production",
    "runner_environment": "github-hosted",
    "pipeline_id": "8412345678",
    "run_attempt": "1",
    "sha": "a" * 40,
    "event": "push",
    "actor": "octocat",
}
JOB_B = {**JOB_A, "environment": None, "runner_environment": "self-hosted"}  # same run, other job
GITLAB = {
    **JOB_A,
    "job_id": "7654321",
    "runner_id": "12270831",
    "environment_protected": True,
    "workflow": "x",
}

leases = sa.table(
    "leases",
    *(sa.column(name) for name in ("id", "secret", "secret_kind", "policy", "issuer", "status")),
    *(sa.column(name) for name in ("issued_at", "expires_at", "max_expires_at", "created_at", "updated_at")),
    *(sa.column(name) for name in ("ttl_seconds", "bounded_by", "renewals", "revoke_attempts")),
    sa.column("idempotency_key"),
    sa.column("workload_key"),
    sa.column("identity", sa.JSON),
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest) -> str:
    databases: SqliteDatabases | PostgresDatabases = request.getfixturevalue(f"{request.param}_databases")
    return databases.empty()


def _row(lease_id: str, identity: dict[str, Any], key: str) -> dict[str, Any]:
    return {
        "id": lease_id,
        "secret": "prod-db",
        "secret_kind": "kv",
        "policy": "deploy-prod",
        "issuer": "github",
        "status": "active",
        "issued_at": NOW,
        "expires_at": NOW + timedelta(minutes=15),
        "max_expires_at": NOW + timedelta(hours=1),
        "created_at": NOW,
        "updated_at": NOW,
        "ttl_seconds": 900,
        "bounded_by": "requested",
        "renewals": 0,
        "revoke_attempts": 0,
        "idempotency_key": "deploy-db",
        "workload_key": key,
        "identity": identity,
    }


def test_existing_leases_get_the_key_of_their_whole_identity(empty_database: str) -> None:
    config = alembic_config(empty_database)
    command.upgrade(config, "0002")  # as the release before this fix left it
    engine = create_engine(empty_database, poolclass=pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(
                leases.insert(),
                [_row("lse_a", JOB_A, "run-wide"), _row("lse_gitlab", GITLAB, "run-wide-2")],
            )
        command.upgrade(config, "0003")
        with engine.connect() as connection:
            keys = dict(connection.execute(sa.select(leases.c.id, leases.c.workload_key)).all())
    finally:
        engine.dispose()

    assert keys["lse_a"] == WorkloadIdentity.from_dict(JOB_A).workload_key()
    assert keys["lse_gitlab"] == WorkloadIdentity.from_dict(GITLAB).workload_key()
    assert keys["lse_a"] != WorkloadIdentity.from_dict(JOB_B).workload_key()  # the sibling owns nothing
