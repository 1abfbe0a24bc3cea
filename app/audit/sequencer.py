"""The sequencer: integrates committed events into the Merkle log and publishes signed checkpoints.

One runs at a time across every replica: each of its transactions first takes a PostgreSQL advisory lock
(transaction-scoped, so a killed sequencer's lock ends with its connection); on SQLite every write transaction
already holds the database's one write lock. A batch is one transaction: it reads the queue of pending events
(``ledger_pending``, written by a trigger in each event's own transaction, so an event with a lower id that
commits after a higher one is still found), gives them the next gapless positions, stores their leaf hashes
and the tree's stored hashes, and deletes them from the queue. A crash anywhere rolls the batch back whole:
nothing is integrated twice and no position is skipped.

A checkpoint is published after a batch that grew the tree, at most one per ``CHECKPOINT_INTERVAL``. Vault
signs it; when Vault cannot, events still commit and integrate, the failure is counted, and the next
checkpoint covers them (docs/ARCHITECTURE.md, "The ledger").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Row, delete, func, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from app.audit import tree
from app.audit.ledger import StoredEvent, event_record
from app.audit.models import AuditEvent, LedgerCheckpoint, LedgerHash, LedgerLeaf, LedgerPending
from app.audit.signer import LedgerSigner
from app.clock import Clock
from app.metrics import SchedulerMetrics
from app.tlog import merkle, note
from app.tlog.canonical import event_leaf
from app.vault.port import VaultError

log = logging.getLogger(__name__)

BATCH_SIZE = 1000
CHECKPOINT_INTERVAL = timedelta(seconds=1)
POLL_SECONDS = 0.2  # the queue is looked at this often when idle: integration within a second of commit
GAUGE_SECONDS = 1.0  # the log's gauges (three counting queries) are read again at most this often
ERROR_SLEEP = 1.0
# pg_try_advisory_xact_lock's key: "tlog" in ASCII, a number no other part of Transom uses.
SEQUENCER_LOCK_KEY = 0x746C6F67


def holds_sequencer_lock(session: Session) -> bool:
    """Take the sequencer's lock for this transaction; False when another sequencer holds it."""
    if session.get_bind().dialect.name != "postgresql":
        return True  # SQLite: the transaction began with BEGIN IMMEDIATE and holds the one write lock
    return bool(session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": SEQUENCER_LOCK_KEY}))


@dataclass(frozen=True, slots=True)
class Batch:
    integrated: int  # events given positions by this batch
    size: int  # the tree's size after it
    pending_left: bool  # the queue held more than one batch


def integrate_batch(
    sessions: sessionmaker[Session],
    clock: Clock,
    *,
    limit: int = BATCH_SIZE,
    metrics: SchedulerMetrics | None = None,
) -> Batch:
    """Integrate up to ``limit`` pending events, oldest id first, in one transaction."""
    with sessions() as session:
        if not holds_sequencer_lock(session):
            return Batch(0, 0, pending_left=False)
        queued = list(
            session.scalars(select(LedgerPending.event_id).order_by(LedgerPending.event_id).limit(limit + 1))
        )
        pending_left, queued = len(queued) > limit, queued[:limit]
        size = tree.integrated_size(session)
        if not queued:
            return Batch(0, size, pending_left=False)
        events = session.execute(
            select(AuditEvent.__table__).where(AuditEvent.id.in_(queued)).order_by(AuditEvent.id)
        ).all()
        now = clock.now()
        leaves, hashes = _extend(session, size, events, now)
        if leaves:
            session.execute(insert(LedgerLeaf), leaves)
            session.execute(insert(LedgerHash), hashes)
        session.execute(delete(LedgerPending).where(LedgerPending.event_id.in_(queued)))
        session.commit()
    if len(events) != len(queued):
        log.error("the ledger queue named %d event(s) that do not exist", len(queued) - len(events))
    if metrics is not None:
        for event in events:
            metrics.ledger_integration_delay.observe(max(0.0, (now - event.at).total_seconds()))
    return Batch(len(events), size + len(events), pending_left=pending_left)


def _extend(
    session: Session, size: int, events: Sequence[Row[Any]], now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The leaf rows and stored-hash rows that append ``events`` to a tree of ``size`` leaves. Appending
    reads only the roots of the tree's complete subtrees (its frontier) and what the batch itself adds."""
    frontier = merkle.frontier_indexes(size)
    known = dict(zip(frontier, tree.hash_reader(session)(frontier), strict=True))

    def read(indexes: Sequence[int]) -> list[bytes]:
        return [known[index] for index in indexes]

    leaves: list[dict[str, Any]] = []
    hashes: list[dict[str, Any]] = []
    for position, row in enumerate(events, start=size):
        event = cast(StoredEvent, row)
        leaf = merkle.leaf_hash(event_leaf(event_record(event)))
        first = merkle.stored_hash_index(0, position)
        for offset, value in enumerate(merkle.stored_hashes_for_leaf(position, leaf, read)):
            known[first + offset] = value
            hashes.append({"id": first + offset, "hash": value})
        leaves.append({"log_index": position, "event_id": event.id, "leaf_hash": leaf, "integrated_at": now})
    return leaves, hashes


def publish_checkpoint(
    sessions: sessionmaker[Session],
    signer: LedgerSigner,
    clock: Clock,
    origin: str,
    *,
    interval: timedelta = CHECKPOINT_INTERVAL,
    metrics: SchedulerMetrics | None = None,
) -> LedgerCheckpoint | None:
    """Sign and store a checkpoint of the tree as it is, when it grew since the last one and that one is at
    least ``interval`` old. None when there was nothing to publish or Vault did not sign.

    Vault is called between two transactions, never inside one (docs/ARCHITECTURE.md, "Who changes lease
    state, and who commits"): on SQLite a transaction holds the one write lock. A checkpoint another
    sequencer published meanwhile, of this size or larger, wins; this one is dropped."""
    with sessions() as session:
        if not holds_sequencer_lock(session):
            return None
        latest = tree.latest_checkpoint(session)
        size = tree.integrated_size(session)
        now = clock.now()
        if size == 0 or (
            latest is not None and (latest.size >= size or now - latest.published_at < interval)
        ):
            return None
        root = tree.root_hash(session, size)
    try:
        signed = _sign(signer, origin, note.format_checkpoint(origin, size, root))
    except (VaultError, note.NoteError) as exc:
        error_class = exc.error_class if isinstance(exc, VaultError) else "bad_signature"
        log.warning("the ledger's checkpoint of size %d was not signed: %s", size, exc)
        if metrics is not None:
            metrics.ledger_signing_failures.labels(error_class=error_class).inc()
        return None
    with sessions() as session:
        if not holds_sequencer_lock(session):
            return None
        latest = tree.latest_checkpoint(session)
        if latest is not None and latest.size >= size:
            return None
        checkpoint = LedgerCheckpoint(size=size, root_hash=root, note=signed, published_at=clock.now())
        session.add(checkpoint)
        session.commit()
    return checkpoint


def _sign(signer: LedgerSigner, origin: str, body: str) -> str:
    """The signed note; checked against the key's public half before it is published, so a rotated key or
    a wrong signature never reaches an auditor."""
    key = signer.signing_key()
    signed = note.signed_note(body, origin, key.public_key, signer.sign(body.encode("utf-8"), key))
    try:
        note.open_note(signed, note.Verifier(origin, note.key_id(origin, key.public_key), key.public_key))
    except note.NoteError:
        forget = getattr(signer, "forget_key", None)
        if forget is not None:
            forget()  # read the key again next time
        raise
    return signed


def refresh_gauges(sessions: sessionmaker[Session], clock: Clock, metrics: SchedulerMetrics) -> None:
    """Queue length, tree size, entries no checkpoint covers yet and checkpoint age, as stored now."""
    with sessions() as session:
        pending = session.scalar(select(func.count(LedgerPending.event_id))) or 0
        size = tree.integrated_size(session)
        latest = tree.latest_checkpoint(session)
    metrics.ledger_pending.set(pending)
    metrics.ledger_size.set(size)
    metrics.ledger_unsigned_entries.set(size - (latest.size if latest is not None else 0))
    if latest is not None:
        metrics.ledger_checkpoint_age.set(max(0.0, (clock.now() - latest.published_at).total_seconds()))


class Sequencer:
    """The long-running job: integrate while there is work, publish checkpoints, poll when idle."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        signer: LedgerSigner,
        clock: Clock,
        origin: str,
        stop: threading.Event,
        metrics: SchedulerMetrics | None = None,
    ) -> None:
        self._sessions = sessions
        self._signer = signer
        self._clock = clock
        self._origin = origin
        self._stop = stop
        self._metrics = metrics
        self._gauges_due = 0.0  # time.monotonic() at which the gauges are next read

    def run(self) -> None:
        log.info("ledger sequencer started")
        while not self._stop.is_set():
            self._stop.wait(self.step())
        log.info("ledger sequencer stopped")

    def step(self) -> float:
        """One round; returns how long to wait before the next."""
        try:
            batch = integrate_batch(self._sessions, self._clock, metrics=self._metrics)
            publish_checkpoint(self._sessions, self._signer, self._clock, self._origin, metrics=self._metrics)
            if self._metrics is not None and time.monotonic() >= self._gauges_due:
                refresh_gauges(self._sessions, self._clock, self._metrics)
                self._gauges_due = time.monotonic() + GAUGE_SECONDS
        except Exception:
            log.exception("the ledger's sequencer failed; trying again in %.0f s", ERROR_SLEEP)
            return ERROR_SLEEP
        return 0.0 if batch.pending_left else POLL_SECONDS
