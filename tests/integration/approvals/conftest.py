"""A broker whose policy asks people to approve, and the people: approver tokens with their CI logins."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from werkzeug.test import TestResponse

from tests.support.broker import Broker, bearer, policy_body

APPROVAL = {"required": 2, "approvers": ["alice", "bob", "carol"], "timeout": "30m"}


@dataclass
class People:
    broker: Broker
    tokens: dict[str, str]

    def token(self, name: str, role: str = "approver", ci_login: str | None = None) -> str:
        body = {"name": name, "role": role, "ci_login": ci_login or f"{name}-gh"}
        self.tokens[name] = self.broker.create("/v1/tokens", body)["token"]
        return self.tokens[name]

    def decide(
        self, name: str, request_id: str, verdict: str = "approve", comment: str = "ok"
    ) -> TestResponse:
        return self.broker.client.post(
            f"/v1/approvals/{request_id}/{verdict}",
            json={"comment": comment},
            headers=bearer(self.tokens[name]),
        )

    def read(self, name: str, request_id: str) -> TestResponse:
        return self.broker.client.get(f"/v1/approvals/{request_id}", headers=bearer(self.tokens[name]))


@pytest.fixture
def people(broker: Broker) -> People:
    crew = People(broker, {})
    for name in ("alice", "bob", "carol", "dave"):
        crew.token(name)
    crew.token("auditor-ann", role="auditor")
    return crew


def require_approval(broker: Broker, **overrides: Any) -> None:
    response = broker.admin(
        "PUT", "/v1/policies/deploy-prod", policy_body(**{"approval": APPROVAL, **overrides})
    )
    assert response.status_code == 200, response.get_json()


def ask(
    broker: Broker, secret: str = "prod-vault-token", token: str | None = None, **body: Any
) -> dict[str, Any]:
    """A lease request that must wait: its 202 body's request."""
    response = broker.request_lease(secret, token, **body)
    assert response.status_code == 202, response.get_json()
    request: dict[str, Any] = response.get_json()["approval"]
    return request
