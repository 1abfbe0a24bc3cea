"""policies bind repository ids and protected environments

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing policies keep their meaning: no repository id restriction, no protected environment required.
    # batch_alter_table: SQLite cannot drop a column in place (downgrade), PostgreSQL alters directly.
    with op.batch_alter_table("policies") as batch:
        batch.add_column(sa.Column("repository_ids", sa.JSON(), nullable=True))
        batch.add_column(
            sa.Column(
                "require_protected_environment", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("policies") as batch:
        batch.drop_column("require_protected_environment")
        batch.drop_column("repository_ids")
