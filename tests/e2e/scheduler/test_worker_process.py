"""`transom worker` as a process: on time, on restart, with its metrics, and stopping cleanly."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from app.leases.models import Lease, LeaseStatus
from app.vault.hvac_backend import HvacBackend
from tests.e2e.scheduler.conftest import StartWorker
from tests.e2e.scheduler.worker_processes import wait_until
from tests.integration.scheduler.lease_seeding import (
    end_event_counts,
    load_lease,
    seed_leases,
    statuses,
    token_works,
)
from tests.support.openbao import OpenBaoServer
from tests.support.processes import free_port

pytestmark = pytest.mark.postgres


def metric_samples(port: int) -> dict[str, float]:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {
        sample.name + str(sorted(sample.labels.items()) if sample.labels else ""): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_a_worker_revokes_a_three_second_lease_at_vault_within_two_seconds_and_reports_it(
    sessions: sessionmaker[Session], backend: HvacBackend, vault: OpenBaoServer, start_worker: StartWorker
) -> None:
    port = free_port()
    worker = start_worker("--metrics-port", str(port))
    worker.wait_for_log("sweeper started")
    now = datetime.now(UTC)
    [lease] = seed_leases(
        sessions, backend, [now + timedelta(seconds=3)], now=now, kind="token", vault_ttl=timedelta(minutes=2)
    )

    assert wait_until(lambda: load_lease(sessions, lease.id).status == LeaseStatus.EXPIRED, timeout=6)
    row = load_lease(sessions, lease.id)
    assert row.ended_at is not None
    assert timedelta(0) <= row.ended_at - row.expires_at < timedelta(seconds=2)
    assert not token_works(vault, lease.token or "")

    samples = metric_samples(port)
    assert samples["transom_revocation_lag_seconds_count"] == 1
    assert samples["transom_revocation_lag_seconds_sum"] < 2
    assert wait_until(lambda: metric_samples(port).get("transom_leases_overdue") == 0, timeout=6)
    assert worker.stop() == 0
    assert "worker stopped" in worker.log()
    assert worker.errors() == []
    events = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
    assert any(e["message"] == "worker stopped" and e["logger"] for e in events)  # JSON lines by default


def test_on_start_a_worker_ends_everything_left_overdue(
    sessions: sessionmaker[Session], backend: HvacBackend, vault: OpenBaoServer, start_worker: StartWorker
) -> None:
    now = datetime.now(UTC)
    hour_ago = now - timedelta(hours=1)
    overdue = seed_leases(
        sessions, backend, [hour_ago] * 3, now=hour_ago - timedelta(minutes=5), kind="token"
    )
    # A worker died holding these: revoking, its claim run out.
    orphaned = seed_leases(
        sessions, backend, [hour_ago] * 3, now=hour_ago - timedelta(minutes=5), kind="token"
    )
    with sessions() as session, session.begin():
        session.execute(
            update(Lease)
            .where(Lease.id.in_([s.id for s in orphaned]))
            .values(
                status=LeaseStatus.REVOKING,
                pending_status=LeaseStatus.EXPIRED,
                end_reason="expired",
                next_attempt_at=now - timedelta(seconds=1),
            )
        )
    # A broker died between the write-ahead row and storing the token's accessor.
    stuck = seed_leases(
        sessions,
        backend,
        [now + timedelta(minutes=10)],
        now=now - timedelta(minutes=2),
        kind="token",
        status=LeaseStatus.ISSUING,
        store_accessor=False,
    )

    worker = start_worker()
    everything = overdue + orphaned + stuck
    ids = [s.id for s in everything]
    assert wait_until(lambda: set(statuses(sessions, ids).values()) <= {"expired", "failed"}, timeout=10)
    assert statuses(sessions, [stuck[0].id]) == {stuck[0].id: "failed"}
    assert end_event_counts(sessions) == dict.fromkeys(ids, 1)
    assert not any(token_works(vault, s.token or "") for s in everything)
    assert worker.stop() == 0
    assert worker.errors() == []
