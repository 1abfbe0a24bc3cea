"""A configuration change that ends many leases races the scheduler's workers; each lease still ends once.

Re-evaluation marks its leases ``revoking``, claims them, and revokes them at Vault while earlier chunks
settle. Meanwhile a worker may sweep (it must leave claimed leases alone) or may have ended one of them
(the settle must see that and not write a second end event).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from app.audit.ledger import SYSTEM, Ledger
from app.audit.models import AuditEvent
from app.clock import SystemClock
from app.db import transaction
from app.instants import format_instant
from app.leases import ending
from app.leases.ending import END_ACTIONS
from app.leases.models import Lease, LeaseStatus
from app.scheduler.jobs import retry_revocations
from app.vault.hvac_backend import HvacBackend
from app.vault.port import SecretBackend, VaultHandle
from tests.integration.conftest import create_broker_token, make_app, rt
from tests.support.broker import Broker
from tests.support.oidc_issuer import OidcIssuer
from tests.support.openbao import OpenBaoServer

LEASES = 6


class HookOnFirstRevoke:
    """The real OpenBao; before its first revocation, ``hook`` runs (once), as another process would."""

    def __init__(self, real: SecretBackend) -> None:
        self._real = real
        self.hook: Callable[[], None] | None = None
        self.revoked: list[VaultHandle] = []

    def revoke(self, handle: VaultHandle) -> None:
        hook, self.hook = self.hook, None
        if hook is not None:
            hook()
        self._real.revoke(handle)
        self.revoked.append(handle)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@pytest.fixture
def hooked(
    database_url: str, vault: OpenBaoServer, oidc_issuer: OidcIssuer
) -> Iterator[tuple[Broker, HookOnFirstRevoke, list[str]]]:
    """A broker whose Vault runs a hook before its first revocation, and the ids of its active leases."""
    real = HvacBackend(vault.addr, token=vault.root_token)
    backend = HookOnFirstRevoke(real)
    app = make_app(database_url, vault, vault=backend)
    broker = Broker(app, app.test_client(), create_broker_token(app, "admin"), oidc_issuer, vault)
    broker.register_issuer()
    broker.token_secret()
    broker.policy(secrets=["prod-vault-token"])
    ids = [broker.lease("prod-vault-token")["id"] for _ in range(LEASES)]
    yield broker, backend, ids
    rt(app).engine.dispose()
    real.close()


def _freeze() -> dict[str, Any]:
    now = datetime.now(UTC).replace(microsecond=0)
    return {
        "name": "incident",
        "timezone": "UTC",
        "schedule": {
            "type": "once",
            "start": format_instant(now - timedelta(minutes=1)),
            "end": format_instant(now + timedelta(hours=1)),
        },
    }


def _end_events(app: Flask) -> Counter[str]:
    with rt(app).sessions() as session:
        lease_ids = session.scalars(
            select(AuditEvent.lease_id).where(AuditEvent.action.in_(tuple(END_ACTIONS.values())))
        ).all()
    return Counter(lease_id for lease_id in lease_ids if lease_id is not None)


def _statuses(app: Flask, ids: list[str]) -> set[str]:
    with rt(app).sessions() as session:
        return set(session.scalars(select(Lease.status).where(Lease.id.in_(ids))))


def test_a_lease_a_worker_ended_meanwhile_gets_no_second_end_event(
    hooked: tuple[Broker, HookOnFirstRevoke, list[str]],
) -> None:
    broker, backend, ids = hooked
    runtime = rt(broker.app)
    last = sorted(ids)[-1]

    def worker_ends_one() -> None:
        clock = SystemClock()
        with transaction(runtime.sessions) as session:
            lease = ending.lock_lease(session, last)
            assert lease is not None and lease.status == LeaseStatus.REVOKING
            ending.confirm_end(session, Ledger(session, clock), lease, now=clock.now(), actor=SYSTEM)

    backend.hook = worker_ends_one
    assert broker.admin("POST", "/v1/freezes", _freeze()).status_code == 201

    assert _statuses(broker.app, ids) == {LeaseStatus.REVOKED}
    events = _end_events(broker.app)
    assert {lease_id: events[lease_id] for lease_id in ids} == dict.fromkeys(ids, 1)


def test_a_worker_sweeping_meanwhile_leaves_the_claimed_leases_alone(
    hooked: tuple[Broker, HookOnFirstRevoke, list[str]],
) -> None:
    broker, backend, ids = hooked
    runtime = rt(broker.app)
    swept = []

    def worker_sweeps() -> None:
        # No in-flight grace: only the claim keeps the worker off leases the re-evaluation is revoking.
        result = retry_revocations(runtime.sessions, backend, SystemClock(), in_flight_grace=timedelta(0))
        swept.append(result.claimed)

    backend.hook = worker_sweeps
    assert broker.admin("POST", "/v1/freezes", _freeze()).status_code == 201

    assert swept == [0]
    assert len(backend.revoked) == LEASES  # each credential revoked once, by the re-evaluation
    assert _statuses(broker.app, ids) == {LeaseStatus.REVOKED}
    assert set(_end_events(broker.app).values()) == {1}
