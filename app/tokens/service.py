"""Broker API tokens for admins, auditors and approvers: minted once, stored only as a SHA-256 digest.

Every token expires: 90 days unless asked otherwise, never later than the deployment's maximum
(``TRANSOM_TOKEN_MAX_TTL``, 365 days by default). Its ``last_used_at`` is kept to the minute.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.audit.ledger import Actor, Ledger
from app.clock import Clock
from app.errors import BadRequest, Conflict, NotFound
from app.tokens.models import ApiToken

TOKEN_PREFIX = "trn_"
ROLES = ("admin", "auditor", "approver")
DEFAULT_TTL = timedelta(days=90)
DEFAULT_MAX_TTL = timedelta(days=365)
# last_used_at is written at most this often per token, so a busy token costs no write per request.
USE_RESOLUTION = timedelta(minutes=1)


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

    def create_token(
        self,
        name: str,
        role: str,
        ttl: timedelta | None,
        *,
        actor: Actor,
        max_ttl: timedelta = DEFAULT_MAX_TTL,
        ci_login: str | None = None,
    ) -> NewToken:
        """``ttl`` None means the default lifetime (90 days, or the maximum when that is shorter).
        ``ci_login``: the person's login on the CI platform, for the self-approval rule (docs/API.md)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        lifetime = token_lifetime(ttl, max_ttl)
        now = self._clock.now()
        plain = mint_token()
        record = ApiToken(
            name=name,
            role=role,
            token_hash=digest(plain),
            ci_login=ci_login,
            created_at=now,
            expires_at=now + lifetime,
        )
        self._session.add(record)
        try:
            self._session.flush()
        except IntegrityError:
            raise Conflict(f"a token named {name!r} already exists") from None
        self._ledger.append(
            "token.created", actor=actor, details={"name": name, "role": role, "ci_login": ci_login}
        )
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


def token_lifetime(ttl: timedelta | None, max_ttl: timedelta) -> timedelta:
    """How long a new token lives: ``ttl``, or the default; a 400 naming ``ttl`` beyond the maximum."""
    if ttl is None:
        return min(DEFAULT_TTL, max_ttl)
    if ttl <= timedelta(0):
        raise BadRequest("A token's ttl must be positive.", errors={"ttl": ["must be positive"]})
    if ttl > max_ttl:
        most = f"{max_ttl // timedelta(seconds=1)} s"
        raise BadRequest(
            f"A token may live at most {most} here (TRANSOM_TOKEN_MAX_TTL).",
            errors={"ttl": [f"must be at most {most}"]},
        )
    return ttl


def use_is_due(last_used_at: datetime | None, now: datetime) -> bool:
    """Whether a use at ``now`` must be written: the stored one is missing or a minute old."""
    return last_used_at is None or now - last_used_at >= USE_RESOLUTION


def authenticate_token(session: Session, presented: str, now: datetime) -> ApiToken | None:
    """``find_live_token``, recording the use in ``last_used_at`` (at most once a minute per token).

    Flushed, not committed: the caller commits it (the authentication wrappers do, before the request's own
    work)."""
    record = find_live_token(session, presented, now)
    if record is not None and use_is_due(record.last_used_at, now):
        # Conditional, so concurrent requests and replicas write the minute once between them.
        session.execute(
            update(ApiToken)
            .where(ApiToken.id == record.id)
            .where(or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= now - USE_RESOLUTION))
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )
        set_committed_value(record, "last_used_at", now)  # as written; nothing left to flush
    return record


def find_live_token(session: Session, presented: str, now: datetime) -> ApiToken | None:
    """The unexpired token matching ``presented``, or None."""
    wanted = digest(presented)
    record = session.scalar(select(ApiToken).where(ApiToken.token_hash == wanted))
    if record is None or not hmac.compare_digest(record.token_hash, wanted):
        return None
    if record.expires_at is not None and record.expires_at <= now:
        return None
    return record


def end_page_sessions(session: Session, token_hash: str) -> None:
    """Sign-out: bump the token's session generation, so every page cookie issued before stops working."""
    session.execute(
        update(ApiToken)
        .where(ApiToken.token_hash == token_hash)
        .values(session_generation=ApiToken.session_generation + 1)
        .execution_options(synchronize_session=False)
    )
