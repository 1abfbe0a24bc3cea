"""policies bind the workflow and the client's network; leases remember the client address

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL: no restriction, so existing policies decide as before.
    with op.batch_alter_table("policies") as batch:
        batch.add_column(sa.Column("workflows", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("source_networks", sa.JSON(), nullable=True))
    # NULL for leases issued before: unknown, so a policy later given source_networks ends them.
    with op.batch_alter_table("leases") as batch:
        batch.add_column(sa.Column("source_address", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("leases") as batch:
        batch.drop_column("source_address")
    with op.batch_alter_table("policies") as batch:
        batch.drop_column("source_networks")
        batch.drop_column("workflows")
