"""The write-ahead step's rows, inserted without the ORM's unit of work (issue 14: the hot path).

A new lease's ``issuing`` row and its token's single-use record go in as Core inserts built once per process
(each execution binds only its values): on PostgreSQL one statement (the single-use insert as a
data-modifying CTE), elsewhere two. The ``Lease`` object then joins the session as if it had been loaded,
so the steps after Vault find it there without a query, and nothing is flushed twice. A duplicate (the same
token, or the same idempotency key, at once) raises ``IntegrityError`` from here, as a flush would.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, bindparam, insert
from sqlalchemy.orm import Session, make_transient_to_detached

from app.leases.models import Lease, SeenToken

LEASES = cast(Table, Lease.__table__)
SEEN_TOKENS = cast(Table, SeenToken.__table__)
_SEEN = "seen_"  # the single-use record's parameters, apart from the lease's

_INSERT_LEASE = insert(LEASES).values({c.key: bindparam(c.key, type_=c.type) for c in LEASES.columns})
_INSERT_SEEN = insert(SEEN_TOKENS).values(
    {c.key: bindparam(_SEEN + c.key, type_=c.type) for c in SEEN_TOKENS.columns}
)
_INSERT_BOTH = _INSERT_LEASE.add_cte(_INSERT_SEEN.cte("single_use"))


def insert_write_ahead(session: Session, lease: Lease, seen: SeenToken) -> None:
    """Insert ``lease`` (transient, every column set) and ``seen`` in the session's transaction."""
    values = _column_values(lease)
    seen_values = {_SEEN + key: value for key, value in _column_values(seen).items()}
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_INSERT_BOTH, {**values, **seen_values})
    else:
        session.execute(_INSERT_SEEN, seen_values)
        session.execute(_INSERT_LEASE, values)
    make_transient_to_detached(lease)
    session.add(lease)


def _column_values(obj: Lease | SeenToken) -> dict[str, Any]:
    return {column.key: getattr(obj, column.key) for column in obj.__table__.columns}
