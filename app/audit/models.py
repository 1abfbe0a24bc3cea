from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.clip import clip
from app.db import Base, UTCDateTime


class AuditEvent(Base):
    """One ledger entry. Append-only: no code path updates or deletes it (PostgreSQL enforces it too)."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_action_id", "action", "id"),
        Index("ix_audit_events_lease_id_id", "lease_id", "id"),
        Index("ix_audit_events_repository_branch_at", "repository", "branch", "at"),
        Index("ix_audit_events_at", "at"),
    )

    # Assigned by the ledger from the chain head (not autoincrement): the id is part of the hashed event.
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    action: Mapped[str] = mapped_column(String(64))
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(512))
    lease_id: Mapped[str | None] = mapped_column(String(40))
    policy: Mapped[str | None] = mapped_column(String(63), index=True)
    secret: Mapped[str | None] = mapped_column(String(63), index=True)
    repository: Mapped[str | None] = mapped_column(String(255))
    ref: Mapped[str | None] = mapped_column(String(255))
    branch: Mapped[str | None] = mapped_column(String(255))
    decision: Mapped[str | None] = mapped_column(String(8))
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditChainHead(Base):
    """A single row naming the chain's last event; appends lock it, so the chain stays linear."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(primary_key=True)  # always 1
    last_id: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))


def fitted(values: Mapping[str, str | None]) -> tuple[dict[str, str | None], list[str]]:
    """Column values cut to the columns' widths (a claim may be as long as a 16 KiB token holds), and the
    sorted names of those that were cut: an event is always stored, and says what it does not show whole."""
    columns = AuditEvent.__table__.c
    out: dict[str, str | None] = {}
    for name, value in values.items():
        kind = columns[name].type
        width = kind.length if isinstance(kind, String) else None
        out[name] = value if value is None or width is None else clip(value, width)
    return out, sorted(name for name, value in values.items() if out[name] != value)
