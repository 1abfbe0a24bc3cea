"""The audit ledger's write side: an event is inserted in the transaction of the change it records.

No lock and no hashing here: a trigger queues the event, and the sequencer (``app.audit.sequencer``)
integrates it into the Merkle log later (docs/ARCHITECTURE.md, "The ledger"). ``event_to_dict`` is the event
as the API shows it; its leaf is that without ``index`` and ``leaf_hash`` (``app.tlog.canonical``).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypedDict, cast

from sqlalchemy import Insert, Table, bindparam, insert
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent, fitted
from app.clock import Clock
from app.decision.reasons import Reason
from app.instants import format_instant

SUBJECT_KEYS = ("lease_id", "policy", "secret", "repository", "ref", "branch")


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
EVENTS = cast(Table, AuditEvent.__table__)


def event_insert(prefix: str) -> Insert:
    """An insert of one event whose values bind as ``prefix`` + column name (for ``Ledger.row``'s values),
    so that it can join another statement as a CTE without its parameters meeting that statement's."""
    columns = [column for column in EVENTS.columns if column.key != "id"]  # the database assigns the id
    return insert(EVENTS).values({c.key: bindparam(prefix + c.key, type_=c.type) for c in columns})


class StoredEvent(Protocol):
    """An event row: the ORM object or a Core row of ``audit_events`` (same attribute names)."""

    id: int
    at: datetime
    action: str
    actor_type: str
    actor_id: str
    lease_id: str | None
    policy: str | None
    secret: str | None
    repository: str | None
    ref: str | None
    branch: str | None
    decision: str | None
    reasons: list[dict[str, Any]]
    details: dict[str, Any]


def event_record(event: StoredEvent) -> dict[str, Any]:
    """The event as its leaf covers it (docs/API.md, "Audit ledger")."""
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
    }


def event_to_dict(event: AuditEvent) -> dict[str, Any]:
    """The event as the API shows it: its record, and its place in the log (null until integrated)."""
    leaf = event.leaf
    return {
        **event_record(event),
        "index": leaf.log_index if leaf is not None else None,
        "leaf_hash": encode_hash(leaf.leaf_hash) if leaf is not None else None,
    }


def encode_hash(value: bytes) -> str:
    """Hashes on the wire: standard base64 with padding."""
    return base64.b64encode(value).decode("ascii")


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
        """Add the event to the caller's transaction; its ``id`` is known after the next flush."""
        event = AuditEvent(
            **self._row(
                action,
                actor,
                {
                    "lease_id": lease_id,
                    "policy": policy,
                    "secret": secret,
                    "repository": repository,
                    "ref": ref,
                    "branch": branch,
                },
                decision,
                reasons,
                details,
                at,
            )
        )
        self._session.add(event)
        return event

    def row(
        self,
        action: str,
        *,
        actor: Actor,
        subject: EventSubject,
        decision: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The event's column values, for a Core insert (``event_insert``) that joins another statement: the
        issuance path writes ``lease.granted`` in the statement that activates the lease (issue 14)."""
        return self._row(action, actor, subject, decision, (), details, None)

    def _row(
        self,
        action: str,
        actor: Actor,
        subject: EventSubject,
        decision: str | None,
        reasons: Sequence[Reason],
        details: Mapping[str, Any] | None,
        at: datetime | None,
    ) -> dict[str, Any]:
        given = cast(Mapping[str, str | None], subject)
        columns, cut = fitted({"actor_id": actor.id, **{key: given.get(key) for key in SUBJECT_KEYS}})
        noted = dict(details or {})
        if cut:
            noted["truncated"] = cut  # the whole values stay in details (the identity), where there is room
        return {
            "at": at or self._clock.now(),
            "action": action,
            "actor_type": actor.type,
            "decision": decision,
            "reasons": [r.to_dict() for r in reasons],
            "details": noted,
            **columns,
        }

    def flush(self) -> None:
        """Write the events added so far, so their ids are known."""
        self._session.flush()
