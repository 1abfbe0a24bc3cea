"""Configuration changes take effect at once, on every replica, even for a lease being issued right then.

Each broker process keeps a copy of the configuration and reuses it while the configuration generation is
unchanged; these tests pin that the copy is never stale where it matters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from app.config_snapshot.generation import read_generation
from app.instants import format_instant
from app.leases.models import Lease, LeaseStatus
from app.scheduler.jobs import enforce_freezes
from app.vault.hvac_backend import HvacBackend
from app.vault.port import IssuedCredential, SecretBackend, SecretSpec
from app.windows.models import Freeze
from tests.integration.conftest import create_broker_token, make_app, rt
from tests.support.broker import Broker
from tests.support.oidc_issuer import OidcIssuer
from tests.support.openbao import OpenBaoServer

WEEKDAYS = {"type": "weekly", "days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _freeze(name: str) -> dict[str, Any]:
    now = _now()
    return {
        "name": name,
        "timezone": "UTC",
        "schedule": {
            "type": "once",
            "start": format_instant(now - timedelta(minutes=1)),
            "end": format_instant(now + timedelta(hours=1)),
        },
        "reason": "release freeze",
    }


def _codes(response: Any) -> set[str]:
    assert response.status_code == 403, response.get_json()
    return {r["code"] for r in response.get_json()["reasons"]}


def _generation(app: Flask) -> int:
    with rt(app).sessions() as session:
        return read_generation(session)


def _token_alive(vault: OpenBaoServer, token: str) -> bool:
    with vault.client_for(token) as client:
        try:
            client.auth.token.lookup_self()
        except Exception:
            return False
    return True


@pytest.fixture
def replica(broker: Broker, database_url: str, vault: OpenBaoServer) -> Iterator[Broker]:
    """A second broker process on the same database, as another replica behind the load balancer."""
    other = make_app(database_url, vault)
    yield Broker(other, other.test_client(), broker.admin_token, broker.issuer, vault)
    rt(other).engine.dispose()


def _leases(app: Flask) -> int:
    with rt(app).sessions() as session:
        return len(session.scalars(select(Lease.id)).all())


def test_a_change_on_one_replica_governs_the_next_request_on_another(broker: Broker, replica: Broker) -> None:
    broker.lease("prod-vault-token")  # this replica now holds the configuration in memory
    policy = broker.admin("GET", "/v1/policies/deploy-prod").get_json()
    narrowed = {k: policy[k] for k in ("name", "issuer", "secrets", "repositories", "windows", "max_ttl")}
    issued = _leases(broker.app)

    changed = replica.admin("PUT", "/v1/policies/deploy-prod", {**narrowed, "branches": ["release/*"]})
    assert changed.status_code == 200, changed.get_json()
    assert _codes(broker.request_lease("prod-vault-token")) == {"branch_not_allowed"}

    restored = replica.admin("PUT", "/v1/policies/deploy-prod", {**narrowed, "branches": ["main"]})
    assert restored.status_code == 200
    replica.create("/v1/freezes", _freeze("release"))
    assert _codes(broker.request_lease("prod-vault-token")) == {"freeze_active"}
    # Refused at the decision, from the current configuration: nothing was written ahead or asked of Vault.
    assert _leases(broker.app) == issued

    assert replica.admin("DELETE", "/v1/freezes/release").status_code == 204
    broker.lease("prod-vault-token")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/windows", {"name": "later", "timezone": "UTC", "schedule": WEEKDAYS}),
        ("/v1/secrets", {"name": "other-token", "kind": "token", "policies": ["deploy-prod"]}),
        ("/v1/freezes", _freeze("incident")),
    ],
)
def test_every_configuration_write_moves_the_generation(
    broker: Broker, path: str, body: dict[str, Any]
) -> None:
    name = body["name"]
    steps: list[Callable[[], Any]] = [
        lambda: broker.admin("POST", path, body),
        lambda: broker.admin("PUT", f"{path}/{name}", body),
        lambda: broker.admin("DELETE", f"{path}/{name}"),
    ]
    for step in steps:
        before = _generation(broker.app)
        assert step().status_code < 300
        assert _generation(broker.app) > before


def test_a_refused_change_and_freeze_bookkeeping_leave_the_generation(broker: Broker) -> None:
    before = _generation(broker.app)
    assert broker.admin("POST", "/v1/policies", {"name": "Bad Name"}).status_code == 400
    assert broker.admin("DELETE", "/v1/windows/ghost").status_code == 404
    assert _generation(broker.app) == before

    broker.create("/v1/freezes", _freeze("incident"))
    after_create = _generation(broker.app)
    runtime = rt(broker.app)
    enforce_freezes(runtime.sessions, runtime.vault, runtime.clock)  # records the occurrence as enforced
    with runtime.sessions() as session:
        enforced = session.scalar(select(Freeze.last_enforced_start).where(Freeze.name == "incident"))
    assert enforced is not None
    assert _generation(broker.app) == after_create


class ChangeWhileIssuing:
    """The real OpenBao; while it issues, an admin's change lands on another replica (once)."""

    def __init__(self, real: SecretBackend, change: Callable[[], None]) -> None:
        self._real = real
        self._change: Callable[[], None] | None = change
        self.issued: list[IssuedCredential] = []

    def issue(
        self, spec: SecretSpec, *, lease_id: str, ttl: timedelta, max_ttl: timedelta
    ) -> IssuedCredential:
        change, self._change = self._change, None
        if change is not None:
            change()
        credential = self._real.issue(spec, lease_id=lease_id, ttl=ttl, max_ttl=max_ttl)
        self.issued.append(credential)
        return credential

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@pytest.fixture
def racing_broker(
    database_url: str, vault: OpenBaoServer, oidc_issuer: OidcIssuer
) -> Iterator[Callable[[Callable[[Broker], None]], tuple[Broker, ChangeWhileIssuing]]]:
    """A configured broker whose next issuance is raced by ``change`` run on a second replica."""
    apps: list[Flask] = []
    backends: list[HvacBackend] = []

    def build(change: Callable[[Broker], None]) -> tuple[Broker, ChangeWhileIssuing]:
        admin_app = make_app(database_url, vault)
        admin_token = create_broker_token(admin_app, "admin")
        admin = Broker(admin_app, admin_app.test_client(), admin_token, oidc_issuer, vault)
        admin.register_issuer()
        admin.token_secret()
        admin.kv_secret()
        admin.policy()
        real = HvacBackend(vault.addr, token=vault.root_token)
        racing = ChangeWhileIssuing(real, lambda: change(admin))
        issuing_app = make_app(database_url, vault, vault=racing)
        apps.extend([admin_app, issuing_app])
        backends.append(real)
        ci = Broker(issuing_app, issuing_app.test_client(), admin_token, oidc_issuer, vault, admin.kv_path)
        return ci, racing

    yield build
    for app in apps:
        rt(app).engine.dispose()
    for backend in backends:
        backend.close()


def test_a_freeze_created_while_vault_issues_withdraws_the_credential(racing_broker: Any) -> None:
    ci, racing = racing_broker(lambda admin: admin.create("/v1/freezes", _freeze("incident")))
    token = ci.ci_token()

    refused = ci.request_lease("prod-vault-token", token)

    assert _codes(refused) == {"freeze_active"}
    assert "data" not in refused.get_json()
    issued = racing.issued[0]
    assert not _token_alive(ci.vault, issued.data["token"])
    with rt(ci.app).sessions() as session:
        lease = session.scalar(select(Lease).where(Lease.vault_accessor == issued.handle.accessor))
    assert lease is not None
    assert (lease.status, lease.end_reason) == (LeaseStatus.FAILED, "freeze")
    actions = [
        e["action"] for e in ci.admin("GET", f"/v1/audit/events?lease_id={lease.id}").get_json()["items"]
    ]
    assert "lease.granted" not in actions and "lease.denied" in actions

    # The CI token obtained nothing, so once the freeze is lifted the same job may still get its lease.
    assert ci.admin("DELETE", "/v1/freezes/incident").status_code == 204
    granted = ci.request_lease("prod-vault-token", token)
    assert granted.status_code == 201, granted.get_json()


def test_a_narrowed_policy_while_vault_issues_refuses_with_its_reason(racing_broker: Any) -> None:
    def narrow(admin: Broker) -> None:
        policy = admin.admin("GET", "/v1/policies/deploy-prod").get_json()
        keep = ("name", "issuer", "secrets", "repositories", "windows", "max_ttl")
        body = {**{k: policy[k] for k in keep}, "branches": ["release/*"]}
        assert admin.admin("PUT", "/v1/policies/deploy-prod", body).status_code == 200

    ci, racing = racing_broker(narrow)
    assert _codes(ci.request_lease("prod-db-static")) == {"branch_not_allowed"}
    assert len(racing.issued) == 1


def test_an_unrelated_change_while_vault_issues_does_not_disturb_the_lease(racing_broker: Any) -> None:
    window = {"name": "weekends", "timezone": "UTC", "schedule": WEEKDAYS}
    ci, racing = racing_broker(lambda admin: admin.create("/v1/windows", window))
    granted = ci.request_lease("prod-vault-token")
    assert granted.status_code == 201, granted.get_json()
    assert racing.issued[0].data["token"] == granted.get_json()["data"]["token"]
    assert _token_alive(ci.vault, granted.get_json()["data"]["token"])
