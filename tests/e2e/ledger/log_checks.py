"""What the end-to-end tests check of the verifiable log after real processes wrote and sequenced it: every
event integrated exactly once at gapless positions, every checkpoint consistent with the one before it, and
the whole log verifying against Vault's key."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.audit import tree
from app.audit.models import AuditEvent, LedgerCheckpoint, LedgerLeaf, LedgerPending
from app.audit.signer import TransitSigner
from app.tlog import merkle
from app.vault.hvac_backend import HvacBackend
from tests.support.openbao import OpenBaoServer


@contextmanager
def transit_signer(vault: OpenBaoServer) -> Iterator[TransitSigner]:
    """The broker's signer on the test OpenBao (root token): to publish and verify from the test itself."""
    with HvacBackend(vault.addr, token=vault.root_token) as backend:
        yield TransitSigner(backend.call)


@dataclass(frozen=True, slots=True)
class Placement:
    """Where the events stand in the log."""

    events: int  # rows in audit_events
    leaves: int  # positions taken
    distinct_events: int  # distinct event ids among the positions
    positions_end: int  # highest position + 1 (0 when empty)
    pending: int  # still queued for the sequencer
    orphans: int  # positions naming an event that does not exist

    def problems(self) -> list[str]:
        """What is wrong, in words; empty when every event holds exactly one position and none is skipped."""
        found = []
        if self.pending:
            found.append(f"{self.pending} event(s) still pending")
        if self.leaves != self.positions_end:
            found.append(f"positions are not gapless: {self.leaves} leaves up to {self.positions_end}")
        if self.distinct_events != self.leaves:
            found.append(f"{self.leaves - self.distinct_events} event(s) integrated more than once")
        if self.leaves != self.events:
            found.append(f"{self.events} events but {self.leaves} leaves")
        if self.orphans:
            found.append(f"{self.orphans} position(s) name no stored event")
        return found


def placement(sessions: sessionmaker[Session]) -> Placement:
    with sessions() as session:
        events = session.scalar(select(func.count()).select_from(AuditEvent)) or 0
        leaves, distinct, last = session.execute(
            select(
                func.count(), func.count(func.distinct(LedgerLeaf.event_id)), func.max(LedgerLeaf.log_index)
            )
        ).one()
        pending = session.scalar(select(func.count()).select_from(LedgerPending)) or 0
        orphans = (
            session.scalar(
                select(func.count())
                .select_from(LedgerLeaf)
                .outerjoin(AuditEvent, AuditEvent.id == LedgerLeaf.event_id)
                .where(AuditEvent.id.is_(None))
            )
            or 0
        )
    end = 0 if last is None else int(last) + 1
    return Placement(int(events), int(leaves), int(distinct), end, int(pending), int(orphans))


def wait_settled(sessions: sessionmaker[Session], timeout: float) -> Placement:
    """Poll until the running sequencers integrated everything (or ``timeout``); the last placement seen."""
    deadline = time.monotonic() + timeout
    while True:
        seen = placement(sessions)
        if not seen.problems() or time.monotonic() > deadline:
            return seen
        time.sleep(0.1)


def inconsistent_checkpoints(sessions: sessionmaker[Session]) -> tuple[int, list[str]]:
    """(how many checkpoints, the pairs of consecutive checkpoints whose consistency proof, read from the
    stored tree, does not verify). Consecutive pairs suffice: consistency composes."""
    failures = []
    with sessions() as session:
        checkpoints = session.scalars(select(LedgerCheckpoint).order_by(LedgerCheckpoint.size)).all()
        read = tree.hash_reader(session)
        for older, newer in itertools.pairwise(checkpoints):
            proof = merkle.consistency_proof(older.size, newer.size, read)
            try:
                merkle.verify_consistency(older.size, newer.size, older.root_hash, newer.root_hash, proof)
            except merkle.ProofError as exc:
                failures.append(f"{older.size} → {newer.size}: {exc}")
    return len(checkpoints), failures
