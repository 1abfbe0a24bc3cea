"""The append-only, hash-chained audit ledger.

``hash`` = SHA-256 hex of ``prev_hash`` followed by the event's canonical JSON without ``hash`` (keys sorted,
separators ``,`` and ``:``, no ASCII escaping). Appends lock the single chain-head row, so concurrent writers
on PostgreSQL still build one linear chain; the event commits in the caller's transaction, together with the
state change it records.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import select
from sqlalchemy.orm import Session, SessionTransaction

from app.audit.models import AuditChainHead, AuditEvent, fitted
from app.clock import Clock
from app.decision.reasons import Reason
from app.instants import format_instant

GENESIS_HASH = "0" * 64
CHAIN_HEAD_ID = 1


class EventSubject(TypedDict, total=False):
    """What an event is about: the filterable columns besides action and actor."""

    lease_id: str | None
    policy: str | None
    secret: str | None
    repository: str | None
    ref: str | None
    branch: str | None


@dataclass(frozen=True, slots=True)
class Actor:
    type: str  # ci | admin | auditor | system
    id: str


SYSTEM = Actor("system", "transom")


def canonical_json(event: Mapping[str, Any]) -> bytes:
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def chain_hash(prev_hash: str, event_without_hash: Mapping[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode("utf-8") + canonical_json(event_without_hash)).hexdigest()


def event_to_dict(event: AuditEvent) -> dict[str, Any]:
    """The event as the API shows it and as its hash covers it (plus ``hash``)."""
    return {
        "id": event.id,
        "at": format_instant(event.at),
        "action": event.action,
        "actor": {"type": event.actor_type, "id": event.actor_id},
        "lease_id": event.lease_id,
        "policy": event.policy,
        "secret": event.secret,
        "repository": event.repository,
        "ref": event.ref,
        "branch": event.branch,
        "decision": event.decision,
        "reasons": event.reasons,
        "details": event.details,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def _unhashed(event: AuditEvent) -> dict[str, Any]:
    data = event_to_dict(event)
    del data["hash"]
    return data


class Ledger:
    def __init__(self, session: Session, clock: Clock) -> None:
        self._session = session
        self._clock = clock

    def append(
        self,
        action: str,
        *,
        actor: Actor,
        lease_id: str | None = None,
        policy: str | None = None,
        secret: str | None = None,
        repository: str | None = None,
        ref: str | None = None,
        branch: str | None = None,
        decision: str | None = None,
        reasons: Sequence[Reason] = (),
        details: Mapping[str, Any] | None = None,
        at: datetime | None = None,
    ) -> AuditEvent:
        subject, cut = fitted(
            {
                "actor_id": actor.id,
                "lease_id": lease_id,
                "policy": policy,
                "secret": secret,
                "repository": repository,
                "ref": ref,
                "branch": branch,
            }
        )
        noted = dict(details or {})
        if cut:
            noted["truncated"] = cut  # the whole values stay in details (the identity), where there is room
        head = self._locked_head()
        event = AuditEvent(
            id=head.last_id + 1,
            at=at or self._clock.now(),
            action=action,
            actor_type=actor.type,
            decision=decision,
            reasons=[r.to_dict() for r in reasons],
            details=noted,
            **subject,
            prev_hash=head.last_hash,
            hash="",
        )
        event.hash = chain_hash(event.prev_hash, _unhashed(event))
        self._session.add(event)
        head.last_id = event.id
        head.last_hash = event.hash
        return event

    def lock(self) -> None:
        """Take the ledger's lock now rather than at the first append: it orders this transaction against
        every other that writes to the ledger (configuration changes among them), until it ends."""
        self._locked_head()

    def _locked_head(self) -> AuditChainHead:
        """The chain head, locked until this transaction ends. Read once per transaction: a batch of events
        (a scheduler settle, a bulk revoke) then costs one lock and one head update, not one per event.

        Kept on the session with the transaction that locked it: the lock ends with that transaction, so the
        next one takes it again (and sees newer events). No session listener is needed for that."""
        held: tuple[SessionTransaction, AuditChainHead] | None = self._session.info.get(_HEAD_KEY)
        current = self._session.get_transaction()
        if held is not None and current is not None and held[0] is current:
            return held[1]
        head = self._session.execute(
            select(AuditChainHead).where(AuditChainHead.id == CHAIN_HEAD_ID).with_for_update()
        ).scalar_one()
        transaction = self._session.get_transaction()
        assert transaction is not None  # the query began one
        self._session.info[_HEAD_KEY] = (transaction, head)
        return head


_HEAD_KEY = "transom_ledger_head"


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    checked: int
    head: str
    first_bad_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"ok": self.ok, "checked": self.checked, "head": self.head}
        if not self.ok:
            data["first_bad_id"] = self.first_bad_id
        return data


def _batches(session: Session, size: int, last_id: int) -> Iterator[Sequence[AuditEvent]]:
    after = 0
    while True:
        batch = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.id > after, AuditEvent.id <= last_id)
            .order_by(AuditEvent.id)
            .limit(size)
        ).all()
        if not batch:
            return
        yield batch
        after = batch[-1].id
        session.expunge_all()  # constant memory over millions of events


def verify_chain(session: Session, *, batch_size: int = 2000) -> Verification:
    """Walk the chain up to the head as it is now: every hash recomputes, every link points at its
    predecessor, ids are gapless, and the head names the last event (so removing the newest shows)."""
    head = session.execute(select(AuditChainHead.last_id, AuditChainHead.last_hash)).one()
    prev_hash, expected_id, checked = GENESIS_HASH, 1, 0
    for batch in _batches(session, batch_size, head.last_id):
        for event in batch:
            good = (
                event.id == expected_id
                and event.prev_hash == prev_hash
                and chain_hash(prev_hash, _unhashed(event)) == event.hash
            )
            if not good:
                return Verification(False, checked, prev_hash, first_bad_id=event.id)
            prev_hash, expected_id, checked = event.hash, expected_id + 1, checked + 1
    if head.last_id != checked or head.last_hash != prev_hash:
        return Verification(False, checked, prev_hash, first_bad_id=checked + 1)
    return Verification(True, checked, prev_hash)
