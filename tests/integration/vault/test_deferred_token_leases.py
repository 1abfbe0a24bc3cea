"""Token leases named by issue time (``defer_token_leases``, the broker's setting): found when revoked, never
listed at issue (issue 14), against the real OpenBao."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import hvac.exceptions
import pytest

from app.vault.hvac_backend import HvacBackend
from app.vault.port import TokenClaims, VaultHandle
from app.vault.transport import PooledAdapter
from tests.integration.vault.test_hvac_backend import TOKEN, issue, role_leases, token_is_alive
from tests.support.openbao import OpenBaoServer

pytestmark = pytest.mark.vault

PREFIX = "auth/token/create/transom-lease/"


def deferred_backend(vault: OpenBaoServer, claims: list[TokenClaims]) -> HvacBackend:
    return HvacBackend(
        vault.addr, token=vault.root_token, token_claims=lambda: claims[-1], defer_token_leases=True
    )


@pytest.fixture
def vault_requests(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Every request the process sends to Vault, by path (lease keys and query strings cut)."""
    seen: Counter[str] = Counter()
    send = PooledAdapter.request

    def counting(adapter: PooledAdapter, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        path = url.split("/v1/", 1)[1].split("?", 1)[0]
        seen[path if not path.startswith(f"sys/leases/lookup/{PREFIX}") else "LIST role leases"] += 1
        return send(adapter, method, url, *args, **kwargs)

    monkeypatch.setattr(PooledAdapter, "request", counting)
    yield seen


def test_issue_makes_two_vault_calls_however_many_tokens_live(
    vault: OpenBaoServer, vault_requests: Counter[str]
) -> None:
    with deferred_backend(vault, [TokenClaims(frozenset(), unsettled=1)]) as backend:
        live = [issue(backend, TOKEN) for _ in range(5)]
        vault_requests.clear()

        credential = issue(backend, TOKEN)

        assert vault_requests == Counter({"auth/token/create/transom-lease": 1, "auth/token/lookup": 1})
        reference = str(credential.handle.lease_id)
        assert reference.startswith(f"{PREFIX}@") and credential.handle.accessor
        assert credential.data["token"] not in reference
        for c in [*live, credential]:
            backend.revoke(c.handle)


def test_revoking_by_issue_time_ends_that_token_only_and_twice_succeeds(vault: OpenBaoServer) -> None:
    with deferred_backend(vault, [TokenClaims(frozenset(), unsettled=1)]) as backend:
        doomed, kept = issue(backend, TOKEN), issue(backend, TOKEN)

        backend.revoke(doomed.handle)

        assert not token_is_alive(vault, doomed.data["token"])
        assert token_is_alive(vault, kept.data["token"])
        backend.revoke(doomed.handle)  # gone: nothing to do
        backend.revoke(kept.handle)
        assert not token_is_alive(vault, kept.data["token"])


def test_a_fresh_process_finds_the_lease_of_a_stored_reference(vault: OpenBaoServer) -> None:
    claims = [TokenClaims(frozenset(), unsettled=1)]
    with deferred_backend(vault, claims) as issuing:
        credential = issue(issuing, TOKEN)
    stored = VaultHandle("token", accessor=credential.handle.accessor, lease_id=credential.handle.lease_id)
    with deferred_backend(vault, claims) as worker:  # knows no lease yet
        worker.revoke(stored)
    assert not token_is_alive(vault, credential.data["token"])


def test_revoking_a_token_vault_already_ended_succeeds(vault: OpenBaoServer) -> None:
    with deferred_backend(vault, [TokenClaims(frozenset(), unsettled=1)]) as backend:
        credential = backend.issue(
            TOKEN, lease_id="lease-short", ttl=timedelta(seconds=1), max_ttl=timedelta(seconds=1)
        )
        with vault.client_for(vault.root_token) as root:  # ended by Vault, not by the broker
            root.auth.token.revoke(credential.data["token"])

        backend.revoke(credential.handle)

        assert not token_is_alive(vault, credential.data["token"])


def test_recovery_spares_tokens_claimed_by_issue_time_and_revokes_the_rest(vault: OpenBaoServer) -> None:
    claims = [TokenClaims(frozenset(), unsettled=1)]
    earlier: set[str] = set()
    with contextlib.suppress(hvac.exceptions.InvalidPath):  # OpenBao: 404 when the role has no lease
        earlier = role_leases(vault)  # left by earlier tests: not this test's to revoke
    with deferred_backend(vault, claims) as backend:
        lost = [issue(backend, TOKEN, lease_id="lease-crashed") for _ in range(2)]
        kept = issue(backend, TOKEN)
        claims.append(TokenClaims(frozenset({str(kept.handle.lease_id), *earlier})))
        with deferred_backend(vault, claims) as worker:  # another process: none of these leases seen yet
            revoked = worker.revoke_by_lease_id("lease-crashed")

        assert revoked == 2
        assert not any(token_is_alive(vault, c.data["token"]) for c in lost)
        assert token_is_alive(vault, kept.data["token"])
        backend.revoke(kept.handle)
