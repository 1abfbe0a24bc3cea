from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.clip import clip
from app.db import Base, UTCDateTime

# A 64-bit key that the database assigns; SQLite assigns only an INTEGER PRIMARY KEY (its rowid).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class AuditEvent(Base):
    """One ledger entry. Append-only: no code path updates or deletes it (PostgreSQL enforces it too).

    Inserting one also queues it for the sequencer: a trigger adds its id to ``ledger_pending`` in the same
    transaction (migration 0007), so no code path can store an event the log would never integrate.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_action_id", "action", "id"),
        Index("ix_audit_events_lease_id_id", "lease_id", "id"),
        Index("ix_audit_events_repository_branch_at", "repository", "branch", "at"),
        Index("ix_audit_events_at", "at"),
    )

    # Storage order, from the database's sequence: part of the hashed leaf, but not the log position (a
    # lower id may commit after a higher one; the sequencer gives positions in the order it finds commits).
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
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
    # Its place in the log, once integrated (None until then).
    leaf: Mapped[LedgerLeaf | None] = relationship(
        primaryjoin="AuditEvent.id == foreign(LedgerLeaf.event_id)", lazy="joined", viewonly=True
    )


class LedgerPending(Base):
    """Events committed and not yet integrated: the sequencer's queue. Filled by a trigger on
    ``audit_events``; the sequencer deletes the rows it integrates, in the same transaction."""

    __tablename__ = "ledger_pending"

    event_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)


class LedgerLeaf(Base):
    """Position ``log_index`` of the log holds event ``event_id``, whose leaf hashes to ``leaf_hash``.
    Append-only (PostgreSQL enforces it)."""

    __tablename__ = "ledger_leaves"

    log_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    integrated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LedgerHash(Base):
    """The tree's stored hashes (docs/ARCHITECTURE.md, "The ledger"): each leaf's hash and the root of every
    complete subtree, at the index ``app.tlog.merkle.stored_hash_index`` gives it. Append-only."""

    __tablename__ = "ledger_hashes"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LedgerCheckpoint(Base):
    """A published checkpoint: the signed note, byte for byte, and what it says. Every one is kept."""

    __tablename__ = "ledger_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


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
