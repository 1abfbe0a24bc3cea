"""Upgrading with leases in flight (docs/OPERATIONS.md, "Upgrade"): a database at the revision before head,
holding active, ``revoking`` and ``issuing`` leases as that schema stores them, each with a real Vault token,
is upgraded to head; the new version's scheduler jobs then end every one of them and revoke it at Vault.

"The revision before head" is worked out at run time, so the test follows head as migrations are added; the
rows are written with SQL against the table as the old revision reflects it, never through today's models.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from app.clock import FrozenClock
from app.leases.models import LeaseStatus
from app.leases.service import new_lease_id
from app.migrate import alembic_config
from app.scheduler.jobs import expire_due_leases, recover_stuck_issuing, retry_revocations
from app.vault.hvac_backend import HvacBackend
from app.vault.port import VaultHandle
from tests.integration.conftest import make_app, rt
from tests.integration.scheduler.lease_seeding import IDENTITY, TOKEN_SPEC, statuses, token_works
from tests.support.openbao import OpenBaoServer

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'upgrade.db'}"
    return request.getfixturevalue("postgres_databases").empty()  # type: ignore[no-any-return]


@pytest.fixture
def backend(vault: OpenBaoServer) -> Iterator[HvacBackend]:
    with HvacBackend(vault.addr, token=vault.root_token) as b:
        yield b


def revision_before_head(database_url: str) -> str:
    head = ScriptDirectory.from_config(alembic_config(database_url)).get_revision("head")
    assert head is not None and isinstance(head.down_revision, str), "head must have one parent"
    return head.down_revision


def lease_row(lease_id: str, status: str, handle: VaultHandle | None, **values: Any) -> dict[str, Any]:
    """A lease as the scheduler of any revision since 0001 knows it; columns the old table lacks are dropped
    when it is inserted."""
    return {
        "id": lease_id,
        "secret": TOKEN_SPEC.name,
        "secret_kind": "token",
        "policy": "deploy-prod",
        "issuer": "github",
        "status": status,
        "issued_at": NOW - timedelta(minutes=10),
        "expires_at": NOW + timedelta(minutes=5),
        "max_expires_at": NOW + timedelta(hours=1),
        "ttl_seconds": 900,
        "bounded_by": "requested",
        "renewals": 0,
        "workload_key": f"old-{lease_id}",
        "identity": dict(IDENTITY),
        "repository": IDENTITY["repository"],
        "ref": IDENTITY["ref"],
        "branch": IDENTITY["branch"],
        "vault_accessor": handle.accessor if handle else None,
        "vault_lease_id": handle.lease_id if handle else None,
        "revoke_attempts": 0,
        "created_at": NOW - timedelta(minutes=10),
        "updated_at": NOW - timedelta(minutes=10),
        **values,
    }


def insert_as_the_old_schema(database_url: str, rows: list[dict[str, Any]]) -> None:
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    try:
        leases = sa.Table("leases", sa.MetaData(), autoload_with=engine)
        sqlite = engine.dialect.name == "sqlite"
        with engine.begin() as connection:
            for row in rows:
                known = {k: _stored(v, sqlite) for k, v in row.items() if k in leases.c}
                connection.execute(leases.insert().values(**known))
    finally:
        engine.dispose()


def _stored(value: Any, sqlite: bool) -> Any:
    """SQLite keeps UTC instants without a zone (app.db.UTCDateTime)."""
    return value.replace(tzinfo=None) if sqlite and isinstance(value, datetime) else value


def test_leases_written_by_the_previous_version_are_all_ended_at_vault_after_an_upgrade(
    empty_database: str, backend: HvacBackend, vault: OpenBaoServer
) -> None:
    previous = revision_before_head(empty_database)
    command.upgrade(alembic_config(empty_database), previous)

    rows, tokens = [], {}
    shapes: list[tuple[str, bool, dict[str, Any]]] = [
        (LeaseStatus.ACTIVE, True, {}),
        (LeaseStatus.ACTIVE, True, {"expires_at": NOW - timedelta(seconds=30)}),  # already overdue
        # Being revoked when the old version stopped: one after a failed attempt, one whose claim ran out.
        (
            LeaseStatus.REVOKING,
            True,
            {
                "pending_status": "expired",
                "end_reason": "expired",
                "revoke_attempts": 1,
                "next_attempt_at": NOW - timedelta(seconds=5),
                "last_error": "vault_unavailable",
            },
        ),
        (
            LeaseStatus.REVOKING,
            True,
            {
                "pending_status": "revoked",
                "end_reason": "revoked",
                "next_attempt_at": NOW - timedelta(minutes=1),
            },
        ),
        # Vault answered, the old version stopped before it stored the accessor.
        (LeaseStatus.ISSUING, False, {}),
    ]
    for status, store_accessor, values in shapes:
        lease_id = new_lease_id()
        issued = backend.issue(
            TOKEN_SPEC, lease_id=lease_id, ttl=timedelta(hours=1), max_ttl=timedelta(hours=1)
        )
        tokens[lease_id] = issued.data["token"]
        rows.append(lease_row(lease_id, status, issued.handle if store_accessor else None, **values))
    insert_as_the_old_schema(empty_database, rows)

    command.upgrade(alembic_config(empty_database), "head")

    app = make_app(empty_database, vault)
    try:
        runtime = rt(app)
        clock = FrozenClock(NOW + timedelta(minutes=6))  # every active lease has expired by then
        recovered = recover_stuck_issuing(runtime.sessions, runtime.vault, clock)
        expired = expire_due_leases(runtime.sessions, runtime.vault, clock)
        clock.advance(timedelta(minutes=5))  # past any claim the expiry sweep took
        retried = retry_revocations(runtime.sessions, runtime.vault, clock)
        assert (recovered.claimed, expired.claimed, retried.claimed) == (1, 2, 2)
        ended = statuses(runtime.sessions, list(tokens))
    finally:
        rt(app).engine.dispose()

    assert ended == {
        rows[0]["id"]: "expired",
        rows[1]["id"]: "expired",
        rows[2]["id"]: "expired",
        rows[3]["id"]: "revoked",
        rows[4]["id"]: "failed",
    }
    assert [lease_id for lease_id, token in tokens.items() if token_works(vault, token)] == []
