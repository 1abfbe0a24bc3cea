"""A credential Vault issued after crash recovery took its row over is revoked, never handed out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from app.audit.ledger import Actor
from app.errors import Conflict
from app.leases.models import Lease, LeaseStatus
from app.leases.service import LeaseRequest, LeaseService
from app.vault.port import IssuedCredential, SecretBackend, SecretSpec
from tests.integration.conftest import rt
from tests.support.broker import Broker


class RecoveryDuringIssue:
    """The real Vault, except that while it issues, 'recovery' moves the write-ahead row to revoking."""

    def __init__(self, real: SecretBackend, broker: Broker) -> None:
        self._real = real
        self._broker = broker
        self.issued: list[IssuedCredential] = []

    def issue(
        self, spec: SecretSpec, *, lease_id: str, ttl: timedelta, max_ttl: timedelta
    ) -> IssuedCredential:
        with rt(self._broker.app).sessions() as session, session.begin():
            session.execute(update(Lease).where(Lease.id == lease_id).values(status=LeaseStatus.REVOKING))
        credential = self._real.issue(spec, lease_id=lease_id, ttl=ttl, max_ttl=max_ttl)
        self.issued.append(credential)
        return credential

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_a_late_credential_is_revoked_not_activated(broker: Broker) -> None:
    runtime = rt(broker.app)
    vault = RecoveryDuringIssue(runtime.vault, broker)
    verify = runtime.workload_verifier
    with runtime.sessions() as session:
        token = verify(session)(broker.ci_token())
        service = LeaseService(session, vault, runtime.clock)  # type: ignore[arg-type]
        try:
            service.request_lease(token, LeaseRequest(secret="prod-vault-token"))
            raise AssertionError("the lease was activated after recovery took its row")
        except Exception as exc:
            assert getattr(exc, "status", None) == 503
    issued_token = vault.issued[0].data["token"]
    with broker.vault.client_for(issued_token) as client:
        try:
            client.auth.token.lookup_self()
            alive = True
        except Exception:
            alive = False
    assert not alive


def test_a_lease_ended_elsewhere_is_not_ended_again(broker: Broker) -> None:
    """The service's session still holds the lease as active while a worker ends it: the row lock must
    bring the row as it is now, so the lease is neither revoked nor renewed a second time."""
    lease = broker.lease("prod-db-static")
    runtime = rt(broker.app)
    with runtime.sessions() as session:
        service = LeaseService(session, runtime.vault, runtime.clock)
        assert session.get(Lease, lease["id"]).status == LeaseStatus.ACTIVE  # type: ignore[union-attr]
        session.commit()
        with runtime.sessions() as worker, worker.begin():
            worker.execute(update(Lease).where(Lease.id == lease["id"]).values(status=LeaseStatus.EXPIRED))
        with pytest.raises(Conflict):
            service.revoke_lease(lease["id"], note=None, actor=Actor("admin", "tests"))
    events = broker.admin("GET", f"/v1/audit/events?lease_id={lease['id']}").get_json()["items"]
    assert [e["action"] for e in events] == ["lease.granted"]
