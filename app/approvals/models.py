from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.clip import ClippedString
from app.db import Base, UTCDateTime


class ApprovalStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"
    USED = "used"  # it obtained its one lease

    @property
    def is_open(self) -> bool:
        return self in (ApprovalStatus.PENDING, ApprovalStatus.APPROVED)


class ApprovalRequest(Base):
    """A lease request that waits for people: approval under a policy, or a break-glass exception.

    Stores the requesting workload's identity (never a token or a secret value). ``open_key`` is the
    workload and secret while the request is open (pending or approved) and NULL afterwards: unique, so one
    workload has at most one open request per secret, however many replicas it asks at once.
    """

    __tablename__ = "approval_requests"
    __table_args__ = (
        Index("ix_approval_requests_status_expires_at", "status", "expires_at"),
        Index("ix_approval_requests_created_at_id", "created_at", "id"),  # keyset pages, newest first
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # apr_<random>
    kind: Mapped[str] = mapped_column(String(16))  # approval | break_glass
    status: Mapped[str] = mapped_column(String(16))
    end_reason: Mapped[str | None] = mapped_column(String(32))  # denied, timeout, policy_changed
    secret: Mapped[str] = mapped_column(String(63))
    policy: Mapped[str] = mapped_column(String(63), index=True)
    required: Mapped[int]
    open_key: Mapped[str | None] = mapped_column(String(140), unique=True)
    workload_key: Mapped[str] = mapped_column(String(64), index=True)
    identity: Mapped[dict[str, Any]] = mapped_column(JSON)
    repository: Mapped[str | None] = mapped_column(ClippedString(255))
    ref: Mapped[str | None] = mapped_column(ClippedString(255))
    actor: Mapped[str | None] = mapped_column(ClippedString(255))
    source_address: Mapped[str | None] = mapped_column(String(64))
    justification: Mapped[str | None] = mapped_column(Text)
    requested_ttl_seconds: Mapped[int | None]
    lease_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApprovalVote(Base):
    """One person's approval or denial of a request; one per broker token and request."""

    __tablename__ = "approval_votes"
    __table_args__ = (UniqueConstraint("request_id", "approver"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("approval_requests.id", ondelete="CASCADE")
    )
    approver: Mapped[str] = mapped_column(String(63))  # the broker token's name
    ci_login: Mapped[str | None] = mapped_column(String(255))
    verdict: Mapped[str] = mapped_column(String(16))  # approve | deny
    comment: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
