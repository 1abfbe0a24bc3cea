"""Vault's transit engine stops signing for the broker, then signs again (issue 13): leases are still granted
and their events integrated, the worker's metrics show the failures and the unsigned entries, and once Vault
signs again a checkpoint covers everything and the log verifies.

The broker logs in by an AppRole of its own holding config/vault/transom-broker.hcl; the outage is that
policy without its ``transit/sign`` block (OpenBao itself stays up: the suite shares it)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.audit.models import LedgerCheckpoint
from app.db import make_engine, make_session_factory
from app.devserver.openbao import BROKER_POLICY_HCL
from tests.e2e.ledger.fleet import Fleet
from tests.e2e.ledger.log_checks import wait_settled
from tests.e2e.scheduler.worker_processes import wait_until, worker_env
from tests.support.oidc_issuer import OidcIssuer
from tests.support.openbao import OpenBaoServer
from tests.support.processes import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.vault, pytest.mark.slow]

POLICY = "transom-broker-signing-outage"
ROLE = "auth/approle/role/transom-broker-signing-outage"
SIGN_BLOCK = re.compile(r'path "transit/sign/transom-ledger" \{[^}]*\}')


@pytest.fixture
def sessions(postgres_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(postgres_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def broker_env(postgres_url: str, vault: OpenBaoServer) -> Iterator[dict[str, str]]:
    """The environment of a broker logged in by its own AppRole under the shipped policy; the policy is
    written back whole at the end, whatever the test did to it."""
    hcl = BROKER_POLICY_HCL.read_text()
    assert SIGN_BLOCK.search(hcl), "the shipped policy lost its transit/sign block"
    vault.write_policy(POLICY, hcl)
    vault.enable_auth("approle")
    client = vault.client()
    client.write_data(ROLE, data={"token_policies": [POLICY], "token_no_default_policy": True})
    role_id = client.adapter.get(f"/v1/{ROLE}/role-id")["data"]["role_id"]
    secret_id = client.adapter.post(f"/v1/{ROLE}/secret-id")["data"]["secret_id"]
    env = worker_env(postgres_url, vault, TRANSOM_VAULT_ROLE_ID=role_id, TRANSOM_VAULT_SECRET_ID=secret_id)
    del env["TRANSOM_VAULT_TOKEN"]
    try:
        yield env
    finally:
        vault.write_policy(POLICY, hcl)


def metric(url: str, name: str) -> float:
    """The sum of a metric's samples (over its labels) on a Prometheus endpoint; 0 when absent."""
    text = requests.get(url, timeout=5).text
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$", re.MULTILINE)
    return sum(float(value) for value in pattern.findall(text))


def checkpoint_size(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.max(LedgerCheckpoint.size))) or 0)


def test_leases_go_on_while_vault_cannot_sign_and_checkpoints_resume(
    postgres_url: str,
    sessions: sessionmaker[Session],
    vault: OpenBaoServer,
    broker_env: dict[str, str],
    tmp_path: Path,
) -> None:
    port = free_port()
    metrics = f"http://127.0.0.1:{port}/metrics"
    with OidcIssuer() as issuer, Fleet(postgres_url, vault, issuer, tmp_path, env=broker_env) as fleet:
        fleet.start_apis(1)
        fleet.configure()
        auditor = fleet.broker_token("auditor")
        fleet.start_worker("--metrics-port", str(port)).wait_for_log("ledger sequencer started")
        assert fleet.grant_many(20, 4) == [201] * 20
        signed = wait_settled(sessions, timeout=10).leaves
        assert wait_until(lambda: checkpoint_size(sessions) == signed, timeout=10)

        vault.write_policy(POLICY, SIGN_BLOCK.sub("", BROKER_POLICY_HCL.read_text()))
        failures_before = metric(metrics, "transom_ledger_signing_failures_total")
        assert fleet.grant_many(30, 4, first=20) == [201] * 30  # issuance goes on
        during = wait_settled(sessions, timeout=10)
        assert during.problems() == []  # and every event is integrated
        events = fleet.audit(auditor, "/v1/audit/events", limit=100).json()["items"]
        assert len(events) == during.events and all(e["index"] is not None for e in events)
        assert wait_until(
            lambda: (
                metric(metrics, "transom_ledger_signing_failures_total") > failures_before
                and metric(metrics, "transom_ledger_unsigned_entries") == during.leaves - signed
            ),
            timeout=10,
        )
        assert checkpoint_size(sessions) == signed  # nothing was published unsigned

        vault.write_policy(POLICY, BROKER_POLICY_HCL.read_text())
        assert wait_until(lambda: checkpoint_size(sessions) == during.leaves, timeout=10)
        assert wait_until(lambda: metric(metrics, "transom_ledger_unsigned_entries") == 0, timeout=5)
        verified = fleet.audit(auditor, "/v1/audit/verify").json()
        assert (verified["ok"], verified["size"], verified["pending"]) == (True, during.leaves, 0)
