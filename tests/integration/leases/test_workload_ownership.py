"""A lease belongs to its workload claim for claim, and an idempotent replay is judged like a new request
(docs/API.md, "the same workload", "idempotency_key"): security review, issue 18, finding 1.

The attack: job A of a run (environment ``production``, GitHub-hosted) leases a secret under an idempotency
key; job B of the same run (no environment, self-hosted runner), which the policy refuses, sends the same key.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from hvac.exceptions import Forbidden

from app.audit.ledger import Actor, Ledger
from app.clock import FrozenClock
from app.db import transaction
from app.tokens.service import TokenService
from tests.integration.conftest import make_app, rt
from tests.support.broker import Broker, bearer
from tests.support.oidc_issuer import OidcIssuer
from tests.support.openbao import OpenBaoServer

KEY = "deploy-db"
JOB_A: dict[str, Any] = {"environment": "production"}  # GitHub-hosted by default
JOB_B: dict[str, Any] = {"runner_environment": "self-hosted"}  # same run, no environment


def _restrict(broker: Broker) -> None:
    """deploy-prod: production only, on GitHub-hosted runners."""
    body = broker.admin("GET", "/v1/policies/deploy-prod").get_json()
    fields = ("issuer", "secrets", "repositories", "branches", "windows", "max_ttl", "default_ttl")
    replaced = broker.admin(
        "PUT",
        "/v1/policies/deploy-prod",
        {
            **{k: body[k] for k in fields},
            "default_ttl": "15m",
            "environments": ["production"],
            "runners": {"environments": ["github-hosted"], "ids": []},
        },
    )
    assert replaced.status_code == 200, replaced.get_json()


@pytest.fixture
def restricted(broker: Broker) -> Broker:
    _restrict(broker)
    return broker


def _token_works(broker: Broker, token: str) -> bool:
    with broker.vault.client_for(token) as client:
        try:
            client.auth.token.lookup_self()
            return True
        except Forbidden:
            return False


def _events(broker: Broker, action: str) -> list[dict[str, Any]]:
    response = broker.admin("GET", f"/v1/audit/events?action={action}&limit=100")
    assert response.status_code == 200, response.get_json()
    items: list[dict[str, Any]] = response.get_json()["items"]
    return items


def _codes(response: Any) -> set[str]:
    return {r["code"] for r in response.get_json()["reasons"]}


# --- the attack -------------------------------------------------------------------------------------------


def test_a_sibling_job_cannot_take_a_denied_secret_with_the_same_idempotency_key(restricted: Broker) -> None:
    broker = restricted
    granted = broker.request_lease("prod-vault-token", broker.ci_token(**JOB_A), idempotency_key=KEY)
    assert granted.status_code == 201, granted.get_json()
    a_token = granted.get_json()["data"]["token"]

    without_key = broker.request_lease("prod-vault-token", broker.ci_token(**JOB_B))
    assert without_key.status_code == 403
    with_key = broker.request_lease("prod-vault-token", broker.ci_token(**JOB_B), idempotency_key=KEY)
    assert with_key.status_code == 403, with_key.get_json()
    assert _codes(with_key) == {"environment_not_allowed", "runner_not_allowed"}
    assert "data" not in with_key.get_json() and "id" not in with_key.get_json()

    assert _token_works(broker, a_token)  # A's credentials were not revoked for B
    shown = broker.admin("GET", f"/v1/leases/{granted.get_json()['id']}").get_json()
    assert (shown["status"], shown["renewals"]) == ("active", 0)
    denials = [e["details"]["identity"] for e in _events(broker, "lease.denied")]
    assert any(i["runner_environment"] == "self-hosted" and i["environment"] is None for i in denials)
    assert _events(broker, "lease.reissued") == []


def test_a_sibling_job_cannot_read_renew_or_release_the_lease(restricted: Broker) -> None:
    broker = restricted
    lease = broker.lease("prod-vault-token", token=broker.ci_token(**JOB_A), idempotency_key=KEY)
    before = broker.admin("GET", f"/v1/leases/{lease['id']}").get_json()
    siblings = [JOB_B, {"environment": "staging"}, {"workflow": "other"}, {"ref": "refs/heads/release/1"}]

    for claims in siblings:
        sibling = bearer(broker.ci_token(**claims))
        assert broker.client.get(f"/v1/leases/{lease['id']}", headers=sibling).status_code == 403
        renewal = broker.client.post(f"/v1/leases/{lease['id']}/renew", json={"ttl": "30m"}, headers=sibling)
        assert renewal.status_code == 403, renewal.get_json()
        release = broker.client.post(f"/v1/leases/{lease['id']}/release", headers=sibling)
        assert release.status_code == 403, release.get_json()

    after = broker.admin("GET", f"/v1/leases/{lease['id']}").get_json()
    assert (after["status"], after["expires_at"], after["renewals"]) == ("active", before["expires_at"], 0)
    assert _token_works(broker, lease["data"]["token"])
    assert _events(broker, "lease.renew_denied") == []
    own = broker.client.get(f"/v1/leases/{lease['id']}", headers=bearer(broker.ci_token(**JOB_A)))
    assert own.status_code == 200


# --- the owner's replay -----------------------------------------------------------------------------------


def test_the_owner_replays_with_a_fresh_token_and_the_event_names_it(restricted: Broker) -> None:
    broker = restricted
    first = broker.lease("prod-vault-token", token=broker.ci_token(**JOB_A), idempotency_key=KEY)
    again = broker.request_lease(
        "prod-vault-token", broker.ci_token(**JOB_A, actor="hubot"), idempotency_key=KEY
    )
    assert again.status_code == 200, again.get_json()
    assert again.get_json()["id"] == first["id"]
    assert not _token_works(broker, first["data"]["token"])
    assert _token_works(broker, again.get_json()["data"]["token"])

    [event] = _events(broker, "lease.reissued")
    assert event["lease_id"] == first["id"]
    assert event["details"]["identity"]["environment"] == "production"
    assert event["details"]["identity"]["actor"] == "hubot"  # the presenting token's identity


def test_a_kv_replay_is_recorded(restricted: Broker) -> None:
    broker = restricted
    first = broker.lease("prod-db-static", token=broker.ci_token(**JOB_A), idempotency_key=KEY)
    again = broker.request_lease("prod-db-static", broker.ci_token(**JOB_A), idempotency_key=KEY)
    assert again.status_code == 200, again.get_json()
    assert again.get_json()["data"] == first["data"]
    [event] = _events(broker, "lease.reissued")
    assert event["lease_id"] == first["id"]
    assert event["details"]["identity"]["environment"] == "production"


def test_a_replay_uses_up_its_token_and_cannot_reuse_another_leases_token(restricted: Broker) -> None:
    broker = restricted
    original = broker.ci_token(**JOB_A)
    lease = broker.lease("prod-vault-token", token=original, idempotency_key=KEY)
    other_token = broker.ci_token(**JOB_A)
    broker.lease("prod-db-static", token=other_token)

    reused = broker.request_lease("prod-vault-token", other_token, idempotency_key=KEY)
    assert reused.status_code == 401
    assert _codes(reused) == {"token_replayed"}

    # A client retrying with the token that obtained this very lease (GitLab mints one per job) is served.
    retried = broker.request_lease("prod-vault-token", original, idempotency_key=KEY)
    assert retried.status_code == 200 and retried.get_json()["id"] == lease["id"]

    fresh = broker.ci_token(**JOB_A)
    assert broker.request_lease("prod-vault-token", fresh, idempotency_key=KEY).status_code == 200
    spent = broker.request_lease("prod-vault-token", fresh)  # the replay used it up
    assert spent.status_code == 401 and _codes(spent) == {"token_replayed"}


# --- judged now: a freeze that began after the grant -------------------------------------------------------


@pytest.fixture
def frozen_broker(database_url: str, vault: OpenBaoServer) -> Iterator[tuple[Broker, FrozenClock]]:
    clock = FrozenClock(datetime.now(UTC).replace(microsecond=0))
    app: Flask = make_app(database_url, vault, clock=clock)
    with transaction(rt(app).sessions) as session:
        admin = TokenService(session, clock, Ledger(session, clock)).create_token(
            "test-admin", "admin", None, actor=Actor("system", "tests")
        )
    with OidcIssuer(clock=clock) as issuer:
        broker = Broker(app, app.test_client(), admin.token, issuer, vault)
        broker.register_issuer()
        broker.kv_secret()
        broker.token_secret()
        broker.policy()
        _restrict(broker)
        yield broker, clock
    rt(app).engine.dispose()


def test_a_replay_is_judged_now(frozen_broker: tuple[Broker, FrozenClock]) -> None:
    broker, clock = frozen_broker
    lease = broker.lease("prod-vault-token", token=broker.ci_token(**JOB_A), idempotency_key=KEY, ttl="1h")
    start = clock.now() + timedelta(minutes=5)
    broker.create(
        "/v1/freezes",
        {
            "name": "incident",
            "schedule": {
                "type": "once",
                "start": start.isoformat().replace("+00:00", "Z"),
                "end": (start + timedelta(hours=2)).isoformat().replace("+00:00", "Z"),
            },
            "reason": "outage",
        },
    )
    clock.advance(timedelta(minutes=6))  # the freeze began; the scheduler has not ended the lease yet

    replay = broker.request_lease("prod-vault-token", broker.ci_token(**JOB_A), idempotency_key=KEY)
    assert replay.status_code == 403, replay.get_json()
    assert _codes(replay) == {"freeze_active"}
    assert "data" not in replay.get_json()
    assert _token_works(broker, lease["data"]["token"])  # nothing was reissued
    assert _events(broker, "lease.reissued") == []
