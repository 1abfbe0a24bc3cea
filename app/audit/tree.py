"""The log's tree as the database stores it: sizes, stored hashes, checkpoints, proofs.

Every proof and root reads O(log n) stored hashes in one query (``app.tlog.merkle``'s readers ask once).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit.models import LedgerCheckpoint, LedgerHash, LedgerLeaf
from app.tlog import merkle


class TreeDamaged(RuntimeError):
    """A stored hash the tree needs is missing: the tables were edited behind the broker's back."""


def hash_reader(session: Session) -> merkle.HashReader:
    def read(indexes: Sequence[int]) -> list[bytes]:
        if not indexes:
            return []
        rows = session.execute(select(LedgerHash.id, LedgerHash.hash).where(LedgerHash.id.in_(set(indexes))))
        found: dict[int, bytes] = {row.id: row.hash for row in rows}
        missing = [index for index in indexes if index not in found]
        if missing:
            raise TreeDamaged(f"stored hash {missing[0]} of the log is missing")
        return [found[index] for index in indexes]

    return read


def integrated_size(session: Session) -> int:
    """How many events the log holds: positions are gapless from 0."""
    last = session.scalar(select(func.max(LedgerLeaf.log_index)))
    return 0 if last is None else int(last) + 1


def root_hash(session: Session, size: int) -> bytes:
    return merkle.tree_hash(size, hash_reader(session))


def latest_checkpoint(session: Session) -> LedgerCheckpoint | None:
    return session.scalar(select(LedgerCheckpoint).order_by(LedgerCheckpoint.size.desc()).limit(1))


def checkpoint_of_size(session: Session, size: int) -> LedgerCheckpoint | None:
    return session.get(LedgerCheckpoint, size)


def checkpoint_covering(session: Session, index: int) -> LedgerCheckpoint | None:
    """The first published checkpoint whose tree includes position ``index``."""
    return session.scalar(
        select(LedgerCheckpoint).where(LedgerCheckpoint.size > index).order_by(LedgerCheckpoint.size).limit(1)
    )


def leaf_at(session: Session, index: int) -> LedgerLeaf | None:
    return session.get(LedgerLeaf, index)


def leaf_of_event(session: Session, event_id: int) -> LedgerLeaf | None:
    return session.scalar(select(LedgerLeaf).where(LedgerLeaf.event_id == event_id))


@dataclass(frozen=True, slots=True)
class InclusionProof:
    index: int
    size: int
    leaf_hash: bytes
    hashes: list[bytes]


def inclusion_proof(session: Session, index: int, size: int) -> InclusionProof:
    leaf = leaf_at(session, index)
    if leaf is None:
        raise TreeDamaged(f"position {index} of the log has no leaf")
    hashes = merkle.inclusion_proof(index, size, hash_reader(session))
    return InclusionProof(index, size, leaf.leaf_hash, hashes)


def consistency_proof(session: Session, old: int, new: int) -> list[bytes]:
    return merkle.consistency_proof(old, new, hash_reader(session))
