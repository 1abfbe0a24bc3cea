"""A sequencer SIGKILLed in the middle of a batch (issue 13): its transaction dies with its connection, so the
log keeps only whole batches; a fresh sequencer finishes the backlog with no gap and no duplicate, and the
signed log verifies."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from app.db import make_engine, make_session_factory
from tests.e2e.ledger.log_checks import placement, transit_signer
from tests.e2e.ledger.sequencer_loop import APPLICATION
from tests.e2e.scheduler.worker_processes import PROJECT_ROOT, wait_until
from tests.integration.audit.ledger_fill import fill
from tests.support.ledger import settle_and_verify
from tests.support.openbao import OpenBaoServer
from tests.support.processes import ROOT

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

BACKLOG = 20_000
BATCH = 1000
KILLS = 4


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    engine = make_engine(postgres_url, pool_size=2)
    yield engine
    engine.dispose()


def start_sequencer(database_url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.ledger.sequencer_loop", database_url, str(BATCH)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.DEVNULL,
    )


def writing_mid_batch(engine: Engine) -> bool:
    """The sequencer's transaction has written rows it has not committed: it is inside a batch."""
    with engine.connect() as conn:
        query = text(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name AND backend_xid IS NOT NULL"
        )
        return bool(conn.scalar(query, {"name": APPLICATION}))


def sequencer_connections(engine: Engine) -> int:
    with engine.connect() as conn:
        query = text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name")
        return int(conn.scalar(query, {"name": APPLICATION}) or 0)


def test_a_sequencer_killed_mid_batch_leaves_no_gap_and_no_duplicate(
    postgres_url: str, engine: Engine, vault: OpenBaoServer
) -> None:
    fill(engine, BACKLOG, chunk=5000)
    rng = random.Random()
    sizes: list[int] = []
    sessions = make_session_factory(engine)
    for kill in range(KILLS):
        sequencer = start_sequencer(postgres_url)
        # A different moment each time: after some batches of this run committed, and inside a later one.
        target = (sizes[-1] if sizes else 0) + rng.randint(kill and 1, 3) * BATCH
        assert wait_until(lambda: placement(sessions).leaves >= target, timeout=60)  # noqa: B023
        time.sleep(rng.uniform(0.0, 0.2))
        assert wait_until(lambda: writing_mid_batch(engine), timeout=30, interval=0.005)
        os.kill(sequencer.pid, signal.SIGKILL)
        sequencer.wait(timeout=10)
        # PostgreSQL notices the closed socket and rolls the batch in flight back.
        assert wait_until(lambda: sequencer_connections(engine) == 0, timeout=10)
        seen = placement(sessions)
        assert seen.leaves % BATCH == 0  # whole batches only: the killed one left nothing behind
        assert seen.leaves + seen.pending == seen.events == BACKLOG  # nor lost an event from the queue
        assert seen.leaves == seen.positions_end == seen.distinct_events
        sizes.append(seen.leaves)
    assert len(set(sizes)) == KILLS and sizes[-1] < BACKLOG, sizes  # each at a new place, before the end

    finisher = start_sequencer(postgres_url)
    assert finisher.wait(timeout=120) == 0
    assert placement(sessions).problems() == []
    with transit_signer(vault) as signer:
        verified = settle_and_verify(sessions, signer)
    assert (verified.ok, verified.size, verified.checked) == (True, BACKLOG, BACKLOG)
    print(f"log sizes after each kill: {sizes}")
