"""Who may call what: every route against no credential, a CI token, an auditor and an admin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.audit.ledger import Actor, Ledger
from app.clock import FrozenClock
from app.db import transaction
from app.tokens.service import TokenService, find_live_token
from tests.integration.conftest import rt
from tests.support.broker import Broker, bearer

NONE, CI, AUDITOR, ADMIN = "none", "ci", "auditor", "admin"

# (method, path, body) → the statuses each caller gets. "ok" means: past authentication and authorization
# (any status but 401 and 403).
ADMIN_WRITE = {NONE: 401, CI: 403, AUDITOR: 403, ADMIN: "ok"}
READ = {NONE: 401, CI: 403, AUDITOR: "ok", ADMIN: "ok"}
CI_ONLY = {NONE: 401, CI: "ok", AUDITOR: 403, ADMIN: 403}
OPEN = {NONE: "ok", CI: "ok", AUDITOR: "ok", ADMIN: "ok"}

ROUTES: list[tuple[str, str, Any, dict[str, Any]]] = [
    ("GET", "/healthz", None, OPEN),
    ("GET", "/readyz", None, OPEN),
    ("GET", "/metrics", None, OPEN),
    ("GET", "/openapi.json", None, OPEN),
    ("GET", "/", None, OPEN),
    ("GET", "/docs", None, OPEN),
    ("GET", "/v1/tokens", None, READ),
    ("POST", "/v1/tokens", {"name": "new-one", "role": "auditor"}, ADMIN_WRITE),
    ("DELETE", "/v1/tokens/nobody", None, ADMIN_WRITE),
    ("GET", "/v1/issuers", None, READ),
    ("GET", "/v1/issuers/github", None, READ),
    ("POST", "/v1/issuers", {"name": "x"}, ADMIN_WRITE),
    ("PUT", "/v1/issuers/github", {"name": "github"}, ADMIN_WRITE),
    ("DELETE", "/v1/issuers/nope", None, ADMIN_WRITE),
    ("GET", "/v1/secrets", None, READ),
    ("GET", "/v1/secrets/prod-vault-token", None, READ),
    ("POST", "/v1/secrets", {"name": "x"}, ADMIN_WRITE),
    ("PUT", "/v1/secrets/prod-vault-token", {"name": "x"}, ADMIN_WRITE),
    ("DELETE", "/v1/secrets/nope", None, ADMIN_WRITE),
    ("GET", "/v1/windows", None, READ),
    ("GET", "/v1/windows/always", None, READ),
    ("GET", "/v1/windows/calendar", None, READ),
    ("GET", "/v1/windows/always/occurrences?from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z", None, READ),
    ("POST", "/v1/windows", {"name": "x"}, ADMIN_WRITE),
    ("PUT", "/v1/windows/nope", {"name": "nope"}, ADMIN_WRITE),
    ("DELETE", "/v1/windows/nope", None, ADMIN_WRITE),
    ("GET", "/v1/freezes", None, READ),
    ("POST", "/v1/freezes", {"name": "x"}, ADMIN_WRITE),
    ("PUT", "/v1/freezes/nope", {"name": "nope"}, ADMIN_WRITE),
    ("DELETE", "/v1/freezes/nope", None, ADMIN_WRITE),
    ("GET", "/v1/policies", None, READ),
    ("GET", "/v1/policies/deploy-prod", None, READ),
    ("POST", "/v1/policies", {"name": "x"}, ADMIN_WRITE),
    ("PUT", "/v1/policies/deploy-prod", {"name": "deploy-prod"}, ADMIN_WRITE),
    ("DELETE", "/v1/policies/nope", None, ADMIN_WRITE),
    ("POST", "/v1/policies/deploy-prod/evaluate", {"token": "x", "secret": "prod-vault-token"}, ADMIN_WRITE),
    ("GET", "/v1/leases", None, READ),
    ("POST", "/v1/leases/revoke", {"filter": {"policy": "nope"}}, ADMIN_WRITE),
    ("POST", "/v1/leases/lse_nope/revoke", {}, ADMIN_WRITE),
    ("POST", "/v1/leases", {"secret": "prod-vault-token"}, CI_ONLY),
    ("POST", "/v1/leases/lse_nope/renew", {}, CI_ONLY),
    ("POST", "/v1/leases/lse_nope/release", None, CI_ONLY),
    ("GET", "/v1/leases/lse_nope", None, {NONE: 401, CI: "ok", AUDITOR: "ok", ADMIN: "ok"}),
]


def _credential(broker: Broker, caller: str, auditor_token: str) -> dict[str, str]:
    if caller == NONE:
        return {}
    if caller == CI:
        return bearer(broker.ci_token())
    return bearer(auditor_token if caller == AUDITOR else broker.admin_token)


@pytest.mark.parametrize("caller", [NONE, CI, AUDITOR, ADMIN])
def test_access_matrix(broker: Broker, auditor_token: str, caller: str) -> None:
    failures = []
    for method, path, body, expected in ROUTES:
        response = broker.client.open(
            path, method=method, json=body, headers=_credential(broker, caller, auditor_token)
        )
        want = expected[caller]
        got = response.status_code
        if (want == "ok" and got in (401, 403)) or (want != "ok" and got != want) or got >= 500:
            failures.append(f"{caller} {method} {path}: {got}, wanted {want}")
    assert failures == []


def test_a_deleted_broker_token_is_refused(broker: Broker) -> None:
    created = broker.admin("POST", "/v1/tokens", {"name": "brief", "role": "auditor", "ttl": "1h"})
    token = created.get_json()["token"]
    assert created.get_json()["expires_at"]
    assert broker.client.get("/v1/leases", headers=bearer(token)).status_code == 200
    assert broker.admin("DELETE", "/v1/tokens/brief").status_code == 204
    assert broker.client.get("/v1/leases", headers=bearer(token)).status_code == 401


def test_an_expired_broker_token_is_refused(broker: Broker) -> None:
    clock = FrozenClock(datetime.now(UTC))
    with broker.app.app_context(), transaction(rt(broker.app).sessions) as session:
        new = TokenService(session, clock, Ledger(session, clock)).create_token(
            "short", "auditor", timedelta(seconds=30), actor=Actor("system", "tests")
        )
    assert broker.client.get("/v1/leases", headers=bearer(new.token)).status_code == 200
    with transaction(rt(broker.app).sessions) as session:
        assert find_live_token(session, new.token, clock.now() + timedelta(seconds=31)) is None
        assert find_live_token(session, new.token, clock.now() + timedelta(seconds=29)) is not None


def test_token_values_are_never_listed(broker: Broker) -> None:
    created = broker.admin("POST", "/v1/tokens", {"name": "ci-auditor", "role": "auditor"}).get_json()
    listing = broker.admin("GET", "/v1/tokens").get_data(as_text=True)
    assert created["token"].startswith("trn_") and len(created["token"]) >= 36
    assert created["token"] not in listing
    assert "ci-auditor" in listing
