"""Several `transom worker` processes on one PostgreSQL: every lease ends, each exactly once, and a worker
killed with SIGKILL in the middle of a sweep loses nothing."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.audit.models import AuditEvent
from app.leases.models import Lease
from app.vault.hvac_backend import HvacBackend
from tests.e2e.ledger.log_checks import transit_signer, wait_settled
from tests.e2e.scheduler.conftest import StartWorker
from tests.e2e.scheduler.worker_processes import wait_until
from tests.integration.scheduler.lease_seeding import SeededLease, end_event_counts, seed_leases, token_works
from tests.support.ledger import settle_and_verify
from tests.support.openbao import OpenBaoServer

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

LEASES = 2000
TOKEN_EVERY = 34  # one lease in 34 is a Vault token; the rest are kv (nothing to revoke at Vault): cheap


def ended_count(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(
            session.scalar(select(func.count()).select_from(Lease).where(Lease.ended_at.is_not(None))) or 0
        )


def revoke_failures(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        query = select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "lease.revoke_failed")
        return int(session.scalar(query) or 0)


def lags(sessions: sessionmaker[Session]) -> list[float]:
    with sessions() as session:
        rows = session.execute(select(Lease.expires_at, Lease.ended_at).where(Lease.ended_at.is_not(None)))
        return sorted((ended - expires).total_seconds() for expires, ended in rows if ended is not None)


def assert_all_ended_once(
    sessions: sessionmaker[Session], seeded: list[SeededLease], vault: OpenBaoServer
) -> None:
    counts = end_event_counts(sessions)
    assert len(counts) == len(seeded)
    assert counts == {s.id: 1 for s in seeded}
    with sessions() as session:
        assert set(session.scalars(select(Lease.status))) == {"expired"}
    # The workers' sequencers integrate every event, each once, at gapless positions; the log verifies.
    assert wait_settled(sessions, timeout=10).problems() == []
    with transit_signer(vault) as signer:
        assert settle_and_verify(sessions, signer).ok
    assert not any(token_works(vault, s.token) for s in seeded if s.token)


@pytest.mark.parametrize("workers", [2, 3])
def test_several_workers_end_every_lease_exactly_once(
    workers: int,
    sessions: sessionmaker[Session],
    backend: HvacBackend,
    vault: OpenBaoServer,
    start_worker: StartWorker,
) -> None:
    fleet = [start_worker() for _ in range(workers)]
    for worker in fleet:
        worker.wait_for_log("sweeper started")
    start = datetime.now(UTC) + timedelta(seconds=3)
    spread = [start + timedelta(seconds=3 * i / LEASES) for i in range(LEASES)]
    token_expiries = [t for i, t in enumerate(spread) if i % TOKEN_EVERY == 0]
    kv_expiries = [t for i, t in enumerate(spread) if i % TOKEN_EVERY]
    now = datetime.now(UTC)
    seeded = seed_leases(sessions, backend, token_expiries, now=now, kind="token") + seed_leases(
        sessions, backend, kv_expiries, now=now
    )
    assert len(seeded) == LEASES

    assert wait_until(lambda: ended_count(sessions) == LEASES, timeout=40, interval=0.25), ended_count(
        sessions
    )
    assert_all_ended_once(sessions, seeded, vault)
    assert revoke_failures(sessions) == 0
    for worker in fleet:
        assert worker.stop() == 0
        assert worker.errors() == []
    # SKIP LOCKED shares the work out rather than making the others wait.
    assert sum("swept:" in worker.log() for worker in fleet) >= 2
    observed = lags(sessions)
    p50, worst = observed[len(observed) // 2], observed[-1]
    print(f"{workers} workers, {LEASES} leases: lag p50 {p50:.3f}s max {worst:.3f}s")


def test_workers_killed_mid_sweep_lose_nothing_and_end_nothing_twice(
    sessions: sessionmaker[Session], backend: HvacBackend, vault: OpenBaoServer, start_worker: StartWorker
) -> None:
    now = datetime.now(UTC)
    seeded = seed_leases(
        sessions, backend, [now - timedelta(seconds=1)] * 600, now=now - timedelta(minutes=1), kind="token"
    )
    progress: list[int] = []
    rng = random.Random()
    # A short claim, so a killed worker's batch is taken up again within the test's patience.
    claim = ("--claim-timeout", "2")
    for _ in range(3):
        worker = start_worker(*claim)
        worker.wait_for_log("sweeper started")
        before = ended_count(sessions)
        assert wait_until(lambda: ended_count(sessions) > before, timeout=10)  # noqa: B023 - used at once
        time.sleep(rng.uniform(0.0, 0.3))
        worker.kill()
        progress.append(ended_count(sessions))
    assert any(0 < ended < len(seeded) for ended in progress), progress  # the kills did land mid-sweep

    last = start_worker(*claim)
    assert wait_until(lambda: ended_count(sessions) == len(seeded), timeout=30, interval=0.25), ended_count(
        sessions
    )
    assert_all_ended_once(sessions, seeded, vault)  # while its sequencer runs
    assert last.stop() == 0
    assert last.errors() == []
