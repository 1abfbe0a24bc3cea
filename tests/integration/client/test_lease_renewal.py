"""When `transom lease exec` renews, against a live broker: at about 2/3 of the lease, not when a renewal
cannot move the lease, and never again after a denial. The client's clock is injected; the broker is real."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests

from app.client.broker import BrokerClient
from app.client.leaseset import LeaseSet
from app.client.report import Reporter
from tests.integration.client.conftest import LiveBroker


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def _lease_set(
    live: LiveBroker, session: requests.Session, clock: FakeMonotonic, lines: list[str], **claims: str
) -> LeaseSet:
    broker = BrokerClient(live.url, session)
    return LeaseSet(
        broker,
        lambda _index: live.broker.ci_token(**claims),
        Reporter(lines.append),
        ttl="60s",
        monotonic=clock,
    )


def _renewals(live: LiveBroker, lease_id: str) -> int:
    shown = live.broker.admin("GET", f"/v1/leases/{lease_id}").get_json()
    return int(shown["renewals"])


def test_renews_at_two_thirds_of_the_lease_and_again_after(
    live: LiveBroker, session: requests.Session
) -> None:
    clock, lines = FakeMonotonic(), []
    leases = _lease_set(live, session, clock, lines)
    assert leases.acquire(["prod-vault-token"], stop=lambda: False)
    leases.plan_renewals()
    lease_id = leases.leases[0].id

    clock.now += 39  # a 60 s lease: due at 40 s
    leases.renew_due()
    assert _renewals(live, lease_id) == 0

    clock.now += 2
    leases.renew_due()
    assert _renewals(live, lease_id) == 1
    assert leases.next_renewal() == pytest.approx(clock.now + 40, abs=1)
    assert any("renewed" in line for line in lines)
    assert leases.release_all()


def test_a_denied_renewal_is_not_tried_again(live: LiveBroker, session: requests.Session) -> None:
    clock, lines = FakeMonotonic(), []
    granted = _lease_set(live, session, clock, lines)
    assert granted.acquire(["prod-vault-token"], stop=lambda: False)
    granted.plan_renewals()
    # Another job holds a lease too; then the policy allows one at a time. That binds renewals (not
    # re-evaluation), so the same workload's renewal is denied by policy.
    live.broker.lease("prod-vault-token", token=live.broker.ci_token(run_id="777"))
    policy = live.broker.admin("GET", "/v1/policies/deploy-prod").get_json()
    body = {k: policy[k] for k in ("issuer", "secrets", "repositories", "branches", "windows", "max_ttl")}
    replaced = live.broker.admin("PUT", "/v1/policies/deploy-prod", {**body, "max_active": 1})
    assert replaced.status_code == 200, replaced.get_json()

    clock.now += 41
    granted.renew_due()

    assert granted.next_renewal() is None
    assert any("max_active_reached" in line for line in lines)
    shown = live.broker.admin("GET", f"/v1/leases/{granted.leases[0].id}").get_json()
    assert shown["status"] == "revoked"


def test_a_lease_bounded_by_its_window_is_not_renewed(live: LiveBroker, session: requests.Session) -> None:
    now = datetime.now(UTC)
    live.broker.create(
        "/v1/windows",
        {
            "name": "closing-soon",
            "schedule": {
                "type": "once",
                "start": (now - timedelta(hours=1)).isoformat(),
                "end": (now + timedelta(seconds=20)).isoformat(),
            },
        },
    )
    policy = live.broker.admin("GET", "/v1/policies/deploy-prod").get_json()
    body = {k: policy[k] for k in ("issuer", "secrets", "repositories", "branches", "max_ttl")}
    replaced = live.broker.admin("PUT", "/v1/policies/deploy-prod", {**body, "windows": ["closing-soon"]})
    assert replaced.status_code == 200, replaced.get_json()
    clock, lines = FakeMonotonic(), []
    leases = _lease_set(live, session, clock, lines)

    assert leases.acquire(["prod-vault-token"], stop=lambda: False)
    leases.plan_renewals()

    assert leases.leases[0].bounded_by == "window"
    assert leases.next_renewal() is None
    assert any("bounded by its window" in line for line in lines)
    assert leases.release_all()
