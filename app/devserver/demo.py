"""The demo configuration `transom dev` puts in place at every start, through the broker's own API.

It goes through the HTTP API in-process (Flask's test client with the dev admin token), so the demo objects
are validated and audited exactly as an admin's would be. Each object is created, or replaced when a previous
run left it in the database; OpenBao, in memory, gets its policy and KV values again each time.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask

from app.audit.ledger import Actor, Ledger
from app.clock import Clock
from app.db import transaction
from app.devserver.demo_issuer import DEMO_AUDIENCE
from app.devserver.openbao import DevOpenBao
from app.instants import format_instant
from app.runtime import Runtime, runtime_of
from app.tokens.service import TokenService, find_live_token

ISSUER = "demo"
KV_SECRET = "demo-db"
KV_PATH = "demo/db"
TOKEN_SECRET = "demo-vault-token"
VAULT_POLICY = "transom-demo"
VAULT_POLICY_HCL = """
path "secret/data/demo/*" {
  capabilities = ["read"]
}
"""
WINDOW = "demo-window"
WINDOW_LENGTH = timedelta(hours=12)
POLICY = "demo-deploy"
REPOSITORY = "acme/app"
BRANCH = "main"
ADMIN_TOKEN_NAME = "dev-admin"
ADMIN_TOKEN_FILE = "admin-token"
DEV_ACTOR = Actor("system", "transom-dev")


class DemoSetupError(RuntimeError):
    pass


@dataclass(frozen=True)
class Demo:
    admin_token: str
    kv_keys: tuple[str, ...]
    window_opens: datetime
    window_closes: datetime


def ensure_admin_token(runtime: Runtime, directory: Path, clock: Clock) -> str:
    """The admin token of earlier runs (kept in ``instance/dev``, mode 0600) while it is still valid, so
    scripts keep working across restarts; else a fresh one."""
    path = directory / ADMIN_TOKEN_FILE
    kept = path.read_text().strip() if path.exists() else ""
    with transaction(runtime.sessions) as session:
        if kept and find_live_token(session, kept, clock.now()) is not None:
            return kept
        service = TokenService(session, clock, Ledger(session, clock))
        if any(t.name == ADMIN_TOKEN_NAME for t in service.list_tokens(limit=500, before_id=None)):
            service.delete_token(ADMIN_TOKEN_NAME, actor=DEV_ACTOR)
            session.flush()
        token = service.create_token(ADMIN_TOKEN_NAME, "admin", None, actor=DEV_ACTOR).token
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(token + "\n")
    return token


def seed(app: Flask, admin_token: str, vault: DevOpenBao, issuer_url: str, now: datetime) -> Demo:
    values = {"db_user": "deployer", "db_password": f"demo-{secrets.token_hex(8)}"}
    vault.write_policy(VAULT_POLICY, VAULT_POLICY_HCL)
    role = runtime_of(app).settings.vault_token_role
    vault.write_token_role(role, [VAULT_POLICY])  # before the token secret: its policies are checked
    vault.write_kv(KV_PATH, values)

    opens = now.replace(second=0, microsecond=0) - timedelta(minutes=1)
    closes = opens + WINDOW_LENGTH
    api = _AdminApi(app, admin_token)
    api.put_or_create(
        "issuers",
        {"name": ISSUER, "issuer": issuer_url, "flavor": "github", "audiences": [DEMO_AUDIENCE]},
    )
    api.put_or_create("secrets", {"name": KV_SECRET, "kind": "kv", "mount": "secret", "path": KV_PATH})
    api.put_or_create("secrets", {"name": TOKEN_SECRET, "kind": "token", "policies": [VAULT_POLICY]})
    api.put_or_create(
        "windows",
        {
            "name": WINDOW,
            "timezone": "UTC",
            "schedule": {"type": "once", "start": format_instant(opens), "end": format_instant(closes)},
        },
    )
    api.put_or_create(
        "policies",
        {
            "name": POLICY,
            "issuer": ISSUER,
            "secrets": [KV_SECRET, TOKEN_SECRET],
            "repositories": [REPOSITORY],
            "branches": [BRANCH],
            "runners": {"environments": ["github-hosted"], "ids": []},
            "windows": [WINDOW],
            "default_ttl": "15m",
            "max_ttl": "1h",
        },
    )
    return Demo(admin_token, tuple(values), opens, closes)


class _AdminApi:
    def __init__(self, app: Flask, admin_token: str) -> None:
        self._client = app.test_client()
        self._headers = {"Authorization": f"Bearer {admin_token}"}

    def put_or_create(self, collection: str, body: dict[str, Any]) -> None:
        path = f"/v1/{collection}/{body['name']}"
        existing = self._client.get(path, headers=self._headers)
        if existing.status_code == 200:
            response = self._client.put(path, json=body, headers=self._headers)
            expected = 200
        else:
            response = self._client.post(f"/v1/{collection}", json=body, headers=self._headers)
            expected = 201
        if response.status_code != expected:
            problem = response.get_json(silent=True) or {}
            detail = problem.get("detail") or response.status
            raise DemoSetupError(f"setting up {path} failed: {detail} {problem.get('errors') or ''}".strip())
