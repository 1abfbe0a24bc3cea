"""approvals and break-glass: policies' rules, approval requests and votes, the notification outbox,
broker tokens' ci_login, and the approval that obtained a lease

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL: no approval and no break-glass, so existing policies decide as before.
    with op.batch_alter_table("policies") as batch:
        batch.add_column(sa.Column("approval", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("break_glass", sa.JSON(), nullable=True))
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("ci_login", sa.String(255), nullable=True))
    with op.batch_alter_table("leases") as batch:
        batch.add_column(sa.Column("approval_id", sa.String(40), nullable=True))
        batch.add_column(sa.Column("break_glass", sa.Boolean(), nullable=False, server_default=sa.false()))

    op.create_table(
        "approval_requests",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("end_reason", sa.String(32), nullable=True),
        sa.Column("secret", sa.String(63), nullable=False),
        sa.Column("policy", sa.String(63), nullable=False),
        sa.Column("required", sa.Integer(), nullable=False),
        sa.Column("open_key", sa.String(140), nullable=True),
        sa.Column("workload_key", sa.String(64), nullable=False),
        sa.Column("identity", sa.JSON(), nullable=False),
        sa.Column("repository", sa.String(255), nullable=True),
        sa.Column("ref", sa.String(255), nullable=True),
        sa.Column("actor", sa.String(255), nullable=True),
        sa.Column("source_address", sa.String(64), nullable=True),
        sa.Column("justification", sa.Text(), nullable=True),
        sa.Column("requested_ttl_seconds", sa.Integer(), nullable=True),
        sa.Column("lease_id", sa.String(40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approval_requests")),
        sa.UniqueConstraint("open_key", name=op.f("uq_approval_requests_open_key")),
    )
    with op.batch_alter_table("approval_requests") as batch:
        batch.create_index("ix_approval_requests_status_expires_at", ["status", "expires_at"], unique=False)
        batch.create_index("ix_approval_requests_created_at_id", ["created_at", "id"], unique=False)
        batch.create_index(batch.f("ix_approval_requests_policy"), ["policy"], unique=False)
        batch.create_index(batch.f("ix_approval_requests_workload_key"), ["workload_key"], unique=False)

    op.create_table(
        "approval_votes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(40), nullable=False),
        sa.Column("approver", sa.String(63), nullable=False),
        sa.Column("ci_login", sa.String(255), nullable=True),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["approval_requests.id"],
            name=op.f("fk_approval_votes_request_id_approval_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approval_votes")),
        sa.UniqueConstraint("request_id", "approver", name=op.f("uq_approval_votes_request_id_approver")),
    )

    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("given_up_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    with op.batch_alter_table("notifications") as batch:
        batch.create_index(
            "ix_notifications_delivered_at_next_attempt_at", ["delivered_at", "next_attempt_at"], unique=False
        )


def downgrade() -> None:
    op.drop_table("notifications")
    op.drop_table("approval_votes")
    op.drop_table("approval_requests")
    with op.batch_alter_table("leases") as batch:
        batch.drop_column("break_glass")
        batch.drop_column("approval_id")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("ci_login")
    with op.batch_alter_table("policies") as batch:
        batch.drop_column("break_glass")
        batch.drop_column("approval")
