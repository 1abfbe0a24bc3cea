"""Reading leases for auditors: filtered keyset pages (newest first) and whole-set exports."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session, sessionmaker

from app.instants import format_instant, parse_instant
from app.leases.models import Lease

EQUALITY_FILTERS = (
    "status",
    "secret",
    "policy",
    "issuer",
    "repository",
    "branch",
    "runner_id",
    "pipeline_id",
)
EXPORT_COLUMNS = (
    "id",
    "secret",
    "policy",
    "issuer",
    "status",
    "end_reason",
    "issued_at",
    "expires_at",
    "ended_at",
    "ttl",
    "bounded_by",
    "renewals",
    "repository",
    "ref",
    "branch",
    "runner_id",
    "pipeline_id",
    "identity",
)


def filtered(filters: Mapping[str, Any]) -> Select[Any]:
    query = select(Lease)
    for name in EQUALITY_FILTERS:
        if filters.get(name) is not None:
            query = query.where(getattr(Lease, name) == filters[name])
    if filters.get("issued_after") is not None:
        query = query.where(Lease.issued_at >= filters["issued_after"])
    if filters.get("issued_before") is not None:
        query = query.where(Lease.issued_at < filters["issued_before"])
    return query


def page(
    session: Session, filters: Mapping[str, Any], *, limit: int, after: tuple[datetime, str] | None
) -> Sequence[Lease]:
    """One page, newest first; ``after`` is the (created_at, id) of the previous page's last lease."""
    query = filtered(filters)
    if after is not None:
        created, lease_id = after
        query = query.where(
            or_(Lease.created_at < created, and_(Lease.created_at == created, Lease.id < lease_id))
        )
    return session.scalars(query.order_by(Lease.created_at.desc(), Lease.id.desc()).limit(limit)).all()


def cursor_of(lease: Lease) -> list[Any]:
    return [format_instant(lease.created_at), lease.id]


def position(cursor: list[Any]) -> tuple[datetime, str]:
    try:
        return parse_instant(str(cursor[0])), str(cursor[1])
    except ValueError:
        raise ValidationError({"cursor": ["is not a cursor this API returned"]}) from None


def export_rows(
    sessions: sessionmaker[Session], filters: Mapping[str, Any], *, batch: int = 1000
) -> Iterator[dict[str, Any]]:
    after: tuple[datetime, str] | None = None
    with sessions() as session:
        while True:
            rows = page(session, filters, limit=batch, after=after)
            for lease in rows:
                yield as_export_row(lease)
            if len(rows) < batch:
                return
            after = (rows[-1].created_at, rows[-1].id)
            session.expunge_all()


def as_export_row(lease: Lease) -> dict[str, Any]:
    return {
        "id": lease.id,
        "secret": lease.secret,
        "policy": lease.policy,
        "issuer": lease.issuer,
        "status": lease.status,
        "end_reason": lease.end_reason,
        "issued_at": format_instant(lease.issued_at),
        "expires_at": format_instant(lease.expires_at),
        "ended_at": format_instant(lease.ended_at) if lease.ended_at else None,
        "ttl": lease.ttl_seconds,
        "bounded_by": lease.bounded_by,
        "renewals": lease.renewals,
        "repository": lease.repository,
        "ref": lease.ref,
        "branch": lease.branch,
        "runner_id": lease.runner_id,
        "pipeline_id": lease.pipeline_id,
        "identity": lease.identity,
    }
