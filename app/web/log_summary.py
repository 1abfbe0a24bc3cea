"""The verifiable log as the auditor's pages show it: the latest checkpoint and its age, the sequencing lag,
and where one event stands: at which position, in which checkpoint (docs/API.md, "Audit ledger")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit import tree
from app.audit.ledger import encode_hash
from app.audit.models import AuditEvent, LedgerCheckpoint, LedgerPending
from app.decision.messages import duration


@dataclass(frozen=True, slots=True)
class CheckpointShown:
    size: int
    root_hash: str
    published_at: datetime
    age: str


@dataclass(frozen=True, slots=True)
class LogSummary:
    integrated: int  # the tree's size, signed or not yet
    checkpoint: CheckpointShown | None
    pending: int  # events committed, not yet integrated
    oldest_pending_age: str | None


@dataclass(frozen=True, slots=True)
class EventPlace:
    index: int | None  # None: not yet integrated
    leaf_hash: str | None
    checkpoint: CheckpointShown | None  # the first checkpoint that includes it; None: not yet in one


def age(since: datetime, now: datetime) -> str:
    """``3s``, ``2m5s``: how long ago, never negative (clocks of replicas differ a little)."""
    return duration(max(timedelta(0), now - since))


def log_summary(session: Session, now: datetime) -> LogSummary:
    latest = tree.latest_checkpoint(session)
    pending, oldest = session.execute(
        select(func.count(LedgerPending.event_id), func.min(AuditEvent.at)).outerjoin(
            AuditEvent, AuditEvent.id == LedgerPending.event_id
        )
    ).one()
    return LogSummary(
        integrated=tree.integrated_size(session),
        checkpoint=_shown(latest, now),
        pending=int(pending or 0),
        oldest_pending_age=age(oldest, now) if pending and oldest is not None else None,
    )


def event_place(session: Session, event_id: int, now: datetime) -> EventPlace:
    leaf = tree.leaf_of_event(session, event_id)
    if leaf is None:
        return EventPlace(None, None, None)
    covering = tree.checkpoint_covering(session, leaf.log_index)
    return EventPlace(leaf.log_index, encode_hash(leaf.leaf_hash), _shown(covering, now))


def _shown(checkpoint: LedgerCheckpoint | None, now: datetime) -> CheckpointShown | None:
    if checkpoint is None:
        return None
    return CheckpointShown(
        size=checkpoint.size,
        root_hash=encode_hash(checkpoint.root_hash),
        published_at=checkpoint.published_at,
        age=age(checkpoint.published_at, now),
    )
