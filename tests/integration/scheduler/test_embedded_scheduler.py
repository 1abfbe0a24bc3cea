"""The embedded scheduler (`transom dev`, single-worker `transom serve`): real time, real seconds."""

from __future__ import annotations

import time
from datetime import timedelta

from app import create_app
from app.leases.models import LeaseStatus
from app.runtime import runtime_of
from app.scheduler.runner import start_embedded
from tests.integration.scheduler.lease_seeding import load_lease, seed_leases, token_works
from tests.support.openbao import OpenBaoServer


def test_the_embedded_scheduler_revokes_a_lease_at_vault_within_two_seconds_of_its_expiry(
    database_url: str, vault: OpenBaoServer
) -> None:
    app = create_app(
        {
            "env": "test",
            "database_url": database_url,
            "vault_addr": vault.addr,
            "vault_token": vault.root_token,
        }
    )
    rt = runtime_of(app)
    scheduler = start_embedded(app)
    try:
        now = rt.clock.now()
        # Vault would keep the token two minutes: only Transom can end it at three seconds.
        [lease] = seed_leases(
            rt.sessions,
            rt.vault,
            [now + timedelta(seconds=3)],
            now=now,
            kind="token",
            vault_ttl=timedelta(minutes=2),
        )
        deadline = time.monotonic() + 5
        while load_lease(rt.sessions, lease.id).status != LeaseStatus.EXPIRED and time.monotonic() < deadline:
            time.sleep(0.05)
        row = load_lease(rt.sessions, lease.id)
        assert row.status == LeaseStatus.EXPIRED
        assert row.ended_at is not None
        assert timedelta(0) <= row.ended_at - row.expires_at < timedelta(seconds=2)
        assert not token_works(vault, lease.token or "")
    finally:
        stopping = time.monotonic()
        scheduler.shutdown()
        assert time.monotonic() - stopping < 3
        rt.engine.dispose()
