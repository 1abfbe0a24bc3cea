"""the owner of a lease is its whole identity: recompute workload keys

A lease's ``workload_key`` was a digest of (issuer, repository, pipeline_id, run_attempt, job_id), which on
GitHub is the whole run. It is now a digest of the identity claim for claim (API.md, "the same workload"),
recomputed here from each lease's stored identity. Identities stored before ``workflow`` was mapped lack
it, so their leases only match tokens without one: such a lease can no longer be renewed or released by its
job, and simply runs out (it is minutes long). Downgrading keeps the new keys: the run-wide ones could
collide (two jobs of one run with the same idempotency key), and a key the old code cannot compute only
refuses more, never less.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 18:00:00
"""

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As app/identity/workload.py WORKLOAD_FIELDS at this revision; inlined so this migration never changes.
WORKLOAD_FIELDS = (
    "issuer",
    "repository",
    "repository_id",
    "ref",
    "sha",
    "environment",
    "environment_protected",
    "runner_environment",
    "runner_id",
    "event",
    "pipeline_id",
    "run_attempt",
    "job_id",
    "workflow",
)
BATCH = 500

leases = sa.table(
    "leases",
    sa.column("id", sa.String),
    sa.column("workload_key", sa.String),
    sa.column("identity", sa.JSON),
)


def workload_key(identity: dict[str, Any]) -> str:
    values = [identity.get(name) for name in WORKLOAD_FIELDS]
    return hashlib.sha256(json.dumps(values, separators=(",", ":")).encode()).hexdigest()


def upgrade() -> None:
    connection = op.get_bind()
    last = ""
    while True:  # in id order, a batch at a time, so a large table is not held in memory
        rows = connection.execute(
            sa.select(leases.c.id, leases.c.identity)
            .where(leases.c.id > last)
            .order_by(leases.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        for lease_id, identity in rows:
            stored = json.loads(identity) if isinstance(identity, str) else identity
            connection.execute(
                sa.update(leases)
                .where(leases.c.id == lease_id)
                .values(workload_key=workload_key(stored or {}))
            )
        last = rows[-1][0]


def downgrade() -> None:
    pass  # the new keys stay (see above)
