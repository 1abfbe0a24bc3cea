"""1,000 grants over 2 `transom serve` processes while 2 `transom worker` processes compete to sequence the
log (issue 13): every event is integrated exactly once at gapless positions, every published checkpoint is
consistent with the one before it (so with every earlier one), and the log verifies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.audit.models import AuditEvent, LedgerCheckpoint
from app.db import make_engine, make_session_factory
from tests.e2e.ledger.fleet import Fleet
from tests.e2e.ledger.log_checks import inconsistent_checkpoints, wait_settled
from tests.e2e.scheduler.worker_processes import wait_until
from tests.support.oidc_issuer import OidcIssuer
from tests.support.openbao import OpenBaoServer

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

GRANTS = 1000
CONCURRENCY = 16


@pytest.fixture
def sessions(postgres_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(postgres_url)
    yield make_session_factory(engine)
    engine.dispose()


def latest_checkpoint_size(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.max(LedgerCheckpoint.size))) or 0)


def granted_events(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        query = select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "lease.granted")
        return int(session.scalar(query) or 0)


def test_two_apis_and_two_competing_sequencers_integrate_every_grant_once(
    postgres_url: str, sessions: sessionmaker[Session], vault: OpenBaoServer, tmp_path: Path
) -> None:
    with OidcIssuer() as issuer, Fleet(postgres_url, vault, issuer, tmp_path) as fleet:
        fleet.start_apis(2)
        fleet.configure()
        auditor = fleet.broker_token("auditor")
        workers = [fleet.start_worker() for _ in range(2)]
        for worker in workers:
            worker.wait_for_log("ledger sequencer started")

        statuses = fleet.grant_many(GRANTS, CONCURRENCY)
        assert statuses == [201] * GRANTS

        placement = wait_settled(sessions, timeout=20)
        assert placement.problems() == []
        assert granted_events(sessions) == GRANTS
        # A checkpoint over everything follows within a second or so of the last integration.
        assert wait_until(lambda: latest_checkpoint_size(sessions) == placement.leaves, timeout=10)
        checkpoints, failures = inconsistent_checkpoints(sessions)
        assert checkpoints >= 2  # published while the grants went on, not only at the end
        assert failures == []

        verified = fleet.audit(auditor, "/v1/audit/verify")
        assert verified.status_code == 200, verified.text
        assert verified.json() | {"root_hash": None} == {
            "ok": True,
            "size": placement.leaves,
            "root_hash": None,
            "checked": placement.leaves,
            "pending": 0,
        }
        for worker in workers:
            assert worker.stop() == 0
            assert worker.errors() == []
