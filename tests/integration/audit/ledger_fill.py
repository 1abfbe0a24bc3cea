"""Many ledger events fast, inserted in bulk (the database's trigger queues each for the sequencer);
``integrate`` then runs the sequencer over them.

Used by the export-memory test and by scripts/bench_audit.py. The events look like a broker's: grants,
releases, renewals, expiries and denials over a few repositories and branches, one every ``step``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, insert, select

from app.audit.models import AuditEvent
from app.audit.sequencer import integrate_batch
from app.clock import SystemClock
from app.db import make_session_factory

START = datetime(2027, 1, 4, tzinfo=UTC)
BRANCHES = ("main", "release/1.x", "develop", "feature/login")
ACTIONS = (
    ("lease.granted", 40),
    ("lease.released", 30),
    ("lease.denied", 15),
    ("lease.renewed", 10),
    ("lease.expired", 5),
)
SECRETS = ("prod-db", "prod-vault-token", "staging-db", "signing-key")


def repository_name(index: int) -> str:
    return f"acme/service-{index:02d}"


def _event(rng: random.Random, number: int, at: datetime, repositories: int) -> dict[str, Any]:
    action = rng.choices([a for a, _ in ACTIONS], weights=[w for _, w in ACTIONS])[0]
    repository = repository_name(rng.randrange(repositories))
    branch = rng.choice(BRANCHES)
    pipeline = str(8_000_000_000 + rng.randrange(1_000_000))
    identity = {"repository": repository, "ref": f"refs/heads/{branch}", "pipeline_id": pipeline}
    denied = action == "lease.denied"
    return {
        "at": at,
        "action": action,
        "actor_type": "ci",
        "actor_id": f"{repository}@run-{pipeline}",
        "lease_id": None if denied else f"lse_{number:024d}",
        "policy": None if denied else "deploy-prod",
        "secret": rng.choice(SECRETS),
        "repository": repository,
        "ref": f"refs/heads/{branch}",
        "branch": branch,
        "decision": "deny" if denied else ("allow" if action in ("lease.granted", "lease.renewed") else None),
        "reasons": [{"code": "outside_window", "message": "the window opens at 09:00"}] if denied else [],
        "details": {"identity": identity} if action in ("lease.denied", "lease.granted") else {"ttl": 900},
    }


def generate(
    count: int, *, first: int, start: datetime, step: timedelta, seed: int, repositories: int
) -> Iterator[dict[str, Any]]:
    """Table rows (the database assigns the ids) for events number ``first`` to ``first + count - 1``."""
    rng = random.Random(seed)
    for number in range(first, first + count):
        yield _event(rng, number, start + step * (number - 1), repositories)


def fill(
    engine: Engine,
    count: int,
    *,
    chunk: int = 5000,
    start: datetime = START,
    step: timedelta = timedelta(seconds=7),
    seed: int = 7,
    repositories: int = 50,
) -> int:
    """Append ``count`` events, ``chunk`` per transaction; returns the last event's id."""
    done = 0
    with engine.connect() as conn:
        first = (conn.scalar(select(func.count()).select_from(AuditEvent)) or 0) + 1
    while done < count:
        size = min(chunk, count - done)
        rows = list(
            generate(
                size,
                first=first + done,
                start=start,
                step=step,
                seed=seed + first + done,
                repositories=repositories,
            )
        )
        with engine.begin() as conn:
            conn.execute(insert(AuditEvent), rows)
        done += size
    with engine.connect() as conn:
        return int(conn.scalar(select(func.max(AuditEvent.id))) or 0)


def integrate(engine: Engine, *, batch: int = 5000) -> int:
    """Run the sequencer until nothing is pending; returns the log's size."""
    sessions = make_session_factory(engine)
    clock = SystemClock()
    while True:
        result = integrate_batch(sessions, clock, limit=batch)
        if not result.pending_left:
            return result.size
