from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from app.clip import ClippedString
from app.db import Base, UTCDateTime


class LeaseStatus(enum.StrEnum):
    ISSUING = "issuing"  # write-ahead: the row exists, Vault may or may not have issued yet
    ACTIVE = "active"
    REVOKING = "revoking"  # ended in intent; Vault has not confirmed the revocation yet
    EXPIRED = "expired"
    RELEASED = "released"
    REVOKED = "revoked"
    FAILED = "failed"  # issuance failed; nothing was handed out

    @property
    def ended(self) -> bool:
        return self in (LeaseStatus.EXPIRED, LeaseStatus.RELEASED, LeaseStatus.REVOKED, LeaseStatus.FAILED)


class Lease(Base):
    """A time-bounded grant of one secret to one workload. Vault handles only, never secret values."""

    __tablename__ = "leases"
    __table_args__ = (
        UniqueConstraint("workload_key", "secret", "idempotency_key"),
        Index("ix_leases_status_expires_at", "status", "expires_at"),
        Index("ix_leases_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_leases_policy_status", "policy", "status"),
        Index("ix_leases_repository_branch", "repository", "branch"),
        Index("ix_leases_created_at_id", "created_at", "id"),  # keyset pages, newest first
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # lse_<random>
    secret: Mapped[str] = mapped_column(String(63))
    secret_kind: Mapped[str] = mapped_column(String(16))
    policy: Mapped[str] = mapped_column(String(63))
    issuer: Mapped[str] = mapped_column(String(63))
    status: Mapped[str] = mapped_column(String(16))
    end_reason: Mapped[str | None] = mapped_column(String(32))
    # The status the lease takes once Vault confirms the revocation (expired, released, revoked).
    pending_status: Mapped[str | None] = mapped_column(String(16))
    revoke_note: Mapped[str | None] = mapped_column(Text)  # admin's reason, shown to auditors
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    max_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ttl_seconds: Mapped[int]
    bounded_by: Mapped[str] = mapped_column(String(16))
    renewals: Mapped[int] = mapped_column(default=0)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    workload_key: Mapped[str] = mapped_column(String(64), index=True)
    identity: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Copies of claims for filtering, cut to fit (a claim may be as long as a token holds); ``identity``
    # keeps them whole.
    repository: Mapped[str | None] = mapped_column(ClippedString(255))
    ref: Mapped[str | None] = mapped_column(ClippedString(255))
    branch: Mapped[str | None] = mapped_column(ClippedString(255))
    runner_id: Mapped[str | None] = mapped_column(ClippedString(255))
    pipeline_id: Mapped[str | None] = mapped_column(ClippedString(255))
    # The client address of the request that last obtained or renewed the lease (after the trusted proxy
    # hops): what a policy's source_networks is checked against when a configuration change re-evaluates it.
    source_address: Mapped[str | None] = mapped_column(String(64))
    # The approval request that obtained it (docs/API.md, "Approvals and break-glass"); a break-glass lease
    # is excused from its policy's windows and freezes, at issue, renewal and re-evaluation.
    approval_id: Mapped[str | None] = mapped_column(String(40))
    break_glass: Mapped[bool] = mapped_column(default=False, server_default=false())
    vault_accessor: Mapped[str | None] = mapped_column(String(255))
    vault_lease_id: Mapped[str | None] = mapped_column(String(1024))
    revoke_attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(255))  # an error class, never a secret
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SeenToken(Base):
    """A CI token (its jti, or a digest of it) that already obtained a lease: single use for issuance."""

    __tablename__ = "seen_tokens"

    replay_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    lease_id: Mapped[str | None] = mapped_column(String(40))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
