"""What every fault test asserts afterwards: Transom's rows and Vault's credentials agree (invariant 2, 5)."""

from __future__ import annotations

import contextlib
import itertools
from datetime import UTC, datetime, timedelta

import hvac.exceptions
from flask import Flask
from sqlalchemy import select

from app.clock import FrozenClock
from app.leases.models import Lease, LeaseStatus
from app.scheduler.jobs import recover_stuck_issuing, retry_revocations
from tests.integration.conftest import rt
from tests.support.openbao import OpenBaoServer

# Rows that tell Transom to revoke whatever Vault holds for them (now or by the scheduler).
KNOWN_TO_TRANSOM = {LeaseStatus.ACTIVE, LeaseStatus.ISSUING, LeaseStatus.REVOKING}
_HOURS_AHEAD = itertools.count(1)


def leases(app: Flask) -> dict[str, Lease]:
    with rt(app).sessions() as session:
        return {lease.id: lease for lease in session.scalars(select(Lease))}


def status_of(app: Flask, lease_id: str) -> str:
    return str(leases(app)[lease_id].status)


def vault_tokens_by_lease(vault: OpenBaoServer) -> dict[str, str]:
    """Every live token at Vault that Transom issued: its Transom lease id -> its accessor."""
    client = vault.client()
    found: dict[str, str] = {}
    for accessor in client.auth.token.list_accessors()["data"]["keys"]:
        try:
            meta = client.auth.token.lookup_accessor(accessor)["data"].get("meta") or {}
        except (hvac.exceptions.InvalidRequest, hvac.exceptions.Forbidden):
            # Revoked or expired since the listing (earlier tests leave short-lived tokens behind; OpenBao
            # answers 403 for a token that expires between its accessor lookup and its token lookup).
            continue
        if "transom_lease" in meta:
            found[meta["transom_lease"]] = accessor
    return found


def revoke_transom_tokens(vault: OpenBaoServer) -> None:
    """A clean slate: revoke the tokens earlier tests left at the shared OpenBao, so that every Transom token
    Vault holds during a fault test is one this test's broker issued."""
    for accessor in vault_tokens_by_lease(vault).values():
        with contextlib.suppress(hvac.exceptions.InvalidRequest, hvac.exceptions.Forbidden):
            vault.client().auth.token.revoke_accessor(accessor)  # it may expire meanwhile


def assert_vault_and_rows_agree(app: Flask, vault: OpenBaoServer) -> None:
    """Nothing is active that Vault does not know, and Vault holds no credential Transom would not revoke."""
    rows = leases(app)
    at_vault = vault_tokens_by_lease(vault)
    for lease_id in at_vault:
        assert lease_id in rows, f"Vault holds a token for {lease_id}, which has no lease row"
        assert rows[lease_id].status in KNOWN_TO_TRANSOM, (
            f"Vault holds a token for {lease_id}, whose row is {rows[lease_id].status}: nobody will revoke it"
        )
    for lease in rows.values():
        if lease.status == LeaseStatus.ACTIVE and lease.secret_kind == "token":
            assert at_vault.get(lease.id) == lease.vault_accessor, f"active {lease.id} has no token at Vault"


def run_recovery(app: Flask) -> None:
    """The scheduler's revocation retries and stuck-issuing recovery, as a worker would run them once their
    backoff and grace periods have passed: each call an hour later than the one before (backoff caps at
    three minutes)."""
    runtime = rt(app)
    later = FrozenClock(datetime.now(UTC) + timedelta(hours=next(_HOURS_AHEAD)))
    recover_stuck_issuing(runtime.sessions, runtime.vault, later)
    retry_revocations(runtime.sessions, runtime.vault, later)


def token_works(vault: OpenBaoServer, token: str) -> bool:
    with vault.client_for(token) as client:
        try:
            client.auth.token.lookup_self()
        except hvac.exceptions.Forbidden:
            return False
    return True
