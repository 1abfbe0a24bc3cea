"""Broker API tokens for admins and auditors: minted once, stored only as a SHA-256 digest."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit.ledger import Actor, Ledger
from app.clock import Clock
from app.errors import Conflict, NotFound
from app.tokens.models import ApiToken

TOKEN_PREFIX = "trn_"
ROLES = ("admin", "auditor")


def digest(token: str) -> str:
    # The token carries 256 random bits, so a plain digest is enough; no salt or slow hash needed.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def mint_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class NewToken:
    record: ApiToken
    token: str  # shown once, never stored


class TokenService:
    def __init__(self, session: Session, clock: Clock, ledger: Ledger) -> None:
        self._session = session
        self._clock = clock
        self._ledger = ledger

    def create_token(self, name: str, role: str, ttl: timedelta | None, *, actor: Actor) -> NewToken:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        now = self._clock.now()
        plain = mint_token()
        record = ApiToken(
            name=name,
            role=role,
            token_hash=digest(plain),
            created_at=now,
            expires_at=now + ttl if ttl else None,
        )
        self._session.add(record)
        try:
            self._session.flush()
        except IntegrityError:
            raise Conflict(f"a token named {name!r} already exists") from None
        self._ledger.append("token.created", actor=actor, details={"name": name, "role": role})
        return NewToken(record, plain)

    def list_tokens(self, *, limit: int, before_id: int | None) -> Sequence[ApiToken]:
        query = select(ApiToken).order_by(ApiToken.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(ApiToken.id < before_id)
        return self._session.scalars(query).all()

    def delete_token(self, name: str, *, actor: Actor) -> None:
        record = self._session.scalar(select(ApiToken).where(ApiToken.name == name))
        if record is None:
            raise NotFound(f"no token named {name!r}")
        self._session.delete(record)
        self._ledger.append("token.deleted", actor=actor, details={"name": name, "role": record.role})


def find_live_token(session: Session, presented: str, now: datetime) -> ApiToken | None:
    """The unexpired token matching ``presented``, or None."""
    wanted = digest(presented)
    record = session.scalar(select(ApiToken).where(ApiToken.token_hash == wanted))
    if record is None or not hmac.compare_digest(record.token_hash, wanted):
        return None
    if record.expires_at is not None and record.expires_at <= now:
        return None
    return record
