"""Reading the ledger for auditors: filtered keyset pages (newest first), whole-set exports, denials.

Pages are keyed on ``id`` alone, so no event shows up twice. Ids come from a sequence and need not commit in
order: an event committed while someone pages may carry an id below the pages already read (the log's
``index`` is the order of integration; ``/v1/audit/verify`` and the proofs cover every event).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import Session, sessionmaker

from app.audit.ledger import event_to_dict
from app.audit.models import AuditEvent
from app.schemas import decode_cursor, encode_cursor

EQUALITY_FILTERS: Mapping[str, Any] = {
    "action": AuditEvent.action,
    "lease_id": AuditEvent.lease_id,
    "policy": AuditEvent.policy,
    "secret": AuditEvent.secret,
    "repository": AuditEvent.repository,
    "branch": AuditEvent.branch,
    "ref": AuditEvent.ref,
    "actor": AuditEvent.actor_id,
    "decision": AuditEvent.decision,
}
EXPORT_COLUMNS = (
    "id",
    "at",
    "action",
    "actor",
    "lease_id",
    "policy",
    "secret",
    "repository",
    "ref",
    "branch",
    "decision",
    "reasons",
    "details",
    "index",
    "leaf_hash",
)
DENIAL_ACTIONS = ("lease.denied", "lease.renew_denied")


def pipeline_of_event() -> ColumnElement[str]:
    """``details.identity.pipeline_id`` as text: ``json_extract`` on SQLite, ``#>>`` on PostgreSQL."""
    extracted: ColumnElement[str] = AuditEvent.details[("identity", "pipeline_id")].as_string()
    return extracted


def filtered(filters: Mapping[str, Any]) -> Select[Any]:
    """Events matching every given filter; ``after`` is inclusive and ``before`` exclusive, on ``at``."""
    query = select(AuditEvent)
    for name, column in EQUALITY_FILTERS.items():
        if filters.get(name) is not None:
            query = query.where(column == filters[name])
    if filters.get("actions"):
        query = query.where(AuditEvent.action.in_(list(filters["actions"])))
    if filters.get("pipeline_id") is not None:
        query = query.where(pipeline_of_event() == str(filters["pipeline_id"]))
    if filters.get("after") is not None:
        query = query.where(AuditEvent.at >= filters["after"])
    if filters.get("before") is not None:
        query = query.where(AuditEvent.at < filters["before"])
    return query


def page(
    session: Session, filters: Mapping[str, Any], *, limit: int, before_id: int | None
) -> Sequence[AuditEvent]:
    """Up to ``limit`` events, newest first, all older than ``before_id`` (the previous page's last)."""
    query = filtered(filters)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    return session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit)).all()


def json_page(session: Session, query: Mapping[str, Any]) -> dict[str, Any]:
    """``{"items", "next_cursor"}`` for the API's query arguments (``limit``, ``cursor`` and filters)."""
    before = before_id_of(query["cursor"]) if query.get("cursor") else None
    rows = page(session, query, limit=query["limit"] + 1, before_id=before)
    items = rows[: query["limit"]]
    more = len(rows) > query["limit"]
    return {
        "items": [event_to_dict(event) for event in items],
        "next_cursor": encode_cursor([items[-1].id]) if more else None,
    }


def before_id_of(cursor: str) -> int:
    value = decode_cursor(cursor, 1)[0]
    if type(value) is not int:
        raise ValidationError({"cursor": ["is not a cursor this API returned"]})
    return value


def export_rows(
    sessions: sessionmaker[Session], filters: Mapping[str, Any], *, batch: int = 1000
) -> Iterator[dict[str, Any]]:
    """Every matching event as the API shows it, newest first, read ``batch`` rows at a time in a session
    of its own (pass read-only sessions: an export may run for minutes)."""
    before: int | None = None
    with sessions() as session:
        while True:
            rows = page(session, filters, limit=batch, before_id=before)
            for event in rows:
                yield event_to_dict(event)
            if len(rows) < batch:
                return
            before = rows[-1].id
            session.expunge_all()  # constant memory however many events match


def lease_timeline(session: Session, lease_id: str) -> Sequence[AuditEvent]:
    """Every event of one lease, oldest first."""
    query = select(AuditEvent).where(AuditEvent.lease_id == lease_id).order_by(AuditEvent.id)
    return session.scalars(query).all()


def pipeline_denials(
    session: Session, *, repository: str | None, pipeline_id: str | None, limit: int = 200
) -> Sequence[AuditEvent]:
    """The refused lease requests of one pipeline run (same repository and pipeline id), oldest first."""
    if pipeline_id is None:
        return []
    query = filtered({"action": "lease.denied", "repository": repository, "pipeline_id": pipeline_id})
    if repository is None:
        query = query.where(AuditEvent.repository.is_(None))
    newest = session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit)).all()
    return list(reversed(newest))


def recent_denials(
    session: Session, *, since: datetime | None, until: datetime | None, limit: int
) -> Sequence[AuditEvent]:
    """The newest refusals (of requests and of renewals), newest first."""
    query = filtered({"actions": DENIAL_ACTIONS, "after": since, "before": until})
    return session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit)).all()
