"""Many ledger events fast, with a correct chain: computed here, inserted in bulk, the head moved along.

Used by the export-memory test and by scripts/bench_audit.py. The events look like a broker's: grants,
releases, renewals, expiries and denials over a few repositories and branches, one every ``step``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select, update

from app.audit.ledger import CHAIN_HEAD_ID, chain_hash
from app.audit.models import AuditChainHead, AuditEvent
from app.instants import format_instant

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


def _event(rng: random.Random, event_id: int, at: datetime, repositories: int) -> dict[str, Any]:
    action = rng.choices([a for a, _ in ACTIONS], weights=[w for _, w in ACTIONS])[0]
    repository = repository_name(rng.randrange(repositories))
    branch = rng.choice(BRANCHES)
    pipeline = str(8_000_000_000 + rng.randrange(1_000_000))
    identity = {"repository": repository, "ref": f"refs/heads/{branch}", "pipeline_id": pipeline}
    denied = action == "lease.denied"
    return {
        "id": event_id,
        "at": format_instant(at),
        "action": action,
        "actor": {"type": "ci", "id": f"{repository}@run-{pipeline}"},
        "lease_id": None if denied else f"lse_{event_id:024d}",
        "policy": None if denied else "deploy-prod",
        "secret": rng.choice(SECRETS),
        "repository": repository,
        "ref": f"refs/heads/{branch}",
        "branch": branch,
        "decision": "deny" if denied else ("allow" if action in ("lease.granted", "lease.renewed") else None),
        "reasons": [{"code": "outside_window", "message": "the window opens at 09:00"}] if denied else [],
        "details": {"identity": identity} if action in ("lease.denied", "lease.granted") else {"ttl": 900},
        "prev_hash": "",
    }


def _row(event: dict[str, Any], at: datetime) -> dict[str, Any]:
    actor = event["actor"]
    row = {k: v for k, v in event.items() if k not in ("actor", "at")}
    return {**row, "at": at, "actor_type": actor["type"], "actor_id": actor["id"]}


def generate(
    count: int,
    *,
    first_id: int,
    prev_hash: str,
    start: datetime,
    step: timedelta,
    seed: int,
    repositories: int,
) -> Iterator[dict[str, Any]]:
    """Table rows with ``prev_hash`` and ``hash`` chained from ``prev_hash``."""
    rng = random.Random(seed)
    for offset in range(count):
        at = start + step * (first_id + offset - 1)
        event = _event(rng, first_id + offset, at, repositories)
        event["prev_hash"] = prev_hash
        prev_hash = chain_hash(prev_hash, event)
        yield {**_row(event, at), "hash": prev_hash}


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
    """Append ``count`` events after the current head, ``chunk`` per transaction; returns the head id."""
    done = 0
    last_id = 0
    while done < count:
        size = min(chunk, count - done)
        with engine.begin() as conn:
            head = conn.execute(
                select(AuditChainHead.last_id, AuditChainHead.last_hash)
                .where(AuditChainHead.id == CHAIN_HEAD_ID)
                .with_for_update()
            ).one()
            rows = list(
                generate(
                    size,
                    first_id=head.last_id + 1,
                    prev_hash=head.last_hash,
                    start=start,
                    step=step,
                    seed=seed + head.last_id,
                    repositories=repositories,
                )
            )
            conn.execute(insert(AuditEvent), rows)
            last_id = rows[-1]["id"]
            conn.execute(
                update(AuditChainHead)
                .where(AuditChainHead.id == CHAIN_HEAD_ID)
                .values(last_id=last_id, last_hash=rows[-1]["hash"])
            )
        done += size
    return last_id
