"""A configured broker for tests: a registered test issuer, secrets in the real OpenBao, windows, policies.

Speaks only HTTP to the app (through Flask's test client), as outside clients do.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.support.oidc_issuer import OidcIssuer
from tests.support.openbao import OpenBaoServer


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def policy_body(name: str = "deploy-prod", **overrides: Any) -> dict[str, Any]:
    """The body of the suite's usual policy: acme/payments on main or release/*, always open, both secrets."""
    return {
        "name": name,
        "issuer": "github",
        "secrets": ["prod-db-static", "prod-vault-token"],
        "repositories": ["acme/payments"],
        "branches": ["main", "release/*"],
        "windows": ["always"],
        "default_ttl": "15m",
        "max_ttl": "1h",
        **overrides,
    }


@dataclass
class Broker:
    app: Flask
    client: FlaskClient
    admin_token: str
    issuer: OidcIssuer
    vault: OpenBaoServer
    kv_path: str = field(default_factory=lambda: f"deploy/{uuid.uuid4().hex[:8]}")

    @classmethod
    def configured(cls, app: Flask, admin_token: str, issuer: OidcIssuer, vault: OpenBaoServer) -> Broker:
        """The usual setup: ``issuer`` registered as ``github``, a kv and a token secret, the policy
        ``deploy-prod`` (window ``always``)."""
        broker = cls(app, app.test_client(), admin_token, issuer, vault)
        broker.register_issuer()
        broker.kv_secret()
        broker.token_secret()
        broker.policy()
        return broker

    # --- admin calls -------------------------------------------------------------------------------------

    def verified_log(self) -> dict[str, Any]:
        """Integrate every pending event, publish a checkpoint, and ask the API to verify the whole log."""
        from app.runtime import runtime_of
        from tests.support.ledger import settle_and_verify

        runtime = runtime_of(self.app)
        settle_and_verify(runtime.sessions, runtime.ledger_signer, runtime.settings.ledger_origin)
        answer = self.admin("GET", "/v1/audit/verify")
        assert answer.status_code == 200, answer.get_data(as_text=True)
        return dict(answer.get_json())

    def admin(self, method: str, path: str, body: Any = None) -> TestResponse:
        return self.client.open(path, method=method, json=body, headers=bearer(self.admin_token))

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.admin("POST", path, body)
        assert response.status_code == 201, response.get_json()
        result: dict[str, Any] = response.get_json()
        return result

    def register_issuer(self, name: str = "github", flavor: str = "github", **extra: Any) -> None:
        self.create(
            "/v1/issuers",
            {
                "name": name,
                "issuer": self.issuer.url,
                "flavor": flavor,
                "audiences": [self.issuer.audience],
                **extra,
            },
        )

    def kv_secret(self, name: str = "prod-db-static", values: dict[str, str] | None = None) -> dict[str, str]:
        values = values or {
            "db_password": f"canary-{uuid.uuid4().hex}",
            "db_user": f"user-{uuid.uuid4().hex}",
        }
        self.vault.write_kv(self.kv_path, values)
        self.create("/v1/secrets", {"name": name, "kind": "kv", "mount": "secret", "path": self.kv_path})
        return values

    def token_secret(self, name: str = "prod-vault-token") -> None:
        self.create("/v1/secrets", {"name": name, "kind": "token", "policies": ["deploy-prod"]})

    def policy(self, name: str = "deploy-prod", **overrides: Any) -> dict[str, Any]:
        return self.create("/v1/policies", policy_body(name, **overrides))

    # --- CI calls ----------------------------------------------------------------------------------------

    def ci_token(self, **claims: Any) -> str:
        return self.issuer.mint(claims=self.issuer.github_claims(**claims))

    def request_lease(self, secret: str, token: str | None = None, **body: Any) -> TestResponse:
        return self.client.post(
            "/v1/leases", json={"secret": secret, **body}, headers=bearer(token or self.ci_token())
        )

    def lease(self, secret: str, **body: Any) -> dict[str, Any]:
        response = self.request_lease(secret, **body)
        assert response.status_code == 201, response.get_json()
        result: dict[str, Any] = response.get_json()
        return result
