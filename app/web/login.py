"""Who is looking at the pages: a broker token pasted once, then a signed session cookie.

The cookie (Flask's session: signed, HttpOnly, SameSite=Strict, Secure over https) holds the token's SHA-256
digest, never the token, so a leaked cookie is no API credential, and the token's session generation. Every
request looks both up again: deleting or expiring the token ends the page session, and signing out bumps the
generation, so a cookie copied before sign-out stops working on the server (docs/API.md, "Authentication").
Signing out therefore ends every page session of that token, in every browser. Every POST carries the
session's CSRF token in a hidden field.
"""

from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import ParamSpec, TypeVar, cast

from flask import Flask, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import select

from app.audit.ledger import Actor
from app.errors import AppError, Forbidden
from app.instants import format_instant, parse_instant
from app.request_context import db_session, runtime
from app.tokens.models import ApiToken
from app.tokens.service import TOKEN_PREFIX, authenticate_token, end_page_sessions

P = ParamSpec("P")
R = TypeVar("R")

CSRF_FIELD = "csrf_token"
SESSION_LIFETIME = timedelta(hours=12)
READER_ROLES = ("admin", "auditor", "approver")


class CsrfRejected(AppError):
    status, type_, title = 400, "csrf-rejected", "The form could not be accepted"


@dataclass(frozen=True, slots=True)
class PageUser:
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def actor(self) -> Actor:
        return Actor(self.role, self.name)


class PageSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, marked ``Secure`` whenever the request came over https: directly, or per the
    ``X-Forwarded-Proto`` of a trusted proxy (``TRANSOM_TRUSTED_PROXY_HOPS``; the app factory's ProxyFix
    sets the scheme from it, as it does the client address). Production marks it always."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def sign_in(presented: str) -> PageUser | None:
    """Start a page session for a live broker token; None (and no session) for anything else."""
    presented = presented.strip()
    if not presented.startswith(TOKEN_PREFIX):
        return None
    now = runtime().clock.now()
    record = authenticate_token(db_session(), presented, now)
    db_session().commit()  # the note of use
    if record is None:
        return None
    session.clear()  # no value from before the login survives it (session fixation)
    session["token_digest"] = record.token_hash
    session["generation"] = record.session_generation
    session["signed_in_at"] = format_instant(now)
    session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return PageUser(record.name, record.role)


def sign_out() -> None:
    """End this session on the server too: only a live session may bump its token's generation."""
    if current_user() is not None:
        end_page_sessions(db_session(), session["token_digest"])
        db_session().commit()
    session.clear()


def current_user() -> PageUser | None:
    if "page_user" in g:
        return cast(PageUser | None, g.page_user)
    g.page_user = _load_user()
    return cast(PageUser | None, g.page_user)


def _load_user() -> PageUser | None:
    digest, signed_in_at = session.get("token_digest"), session.get("signed_in_at")
    if not isinstance(digest, str) or not isinstance(signed_in_at, str):
        return None
    now = runtime().clock.now()
    try:
        fresh = parse_instant(signed_in_at) + SESSION_LIFETIME > now
    except ValueError:
        fresh = False
    record = db_session().scalar(select(ApiToken).where(ApiToken.token_hash == digest)) if fresh else None
    if (
        record is None
        or (record.expires_at is not None and record.expires_at <= now)
        or session.get("generation") != record.session_generation
    ):
        session.clear()
        return None
    return PageUser(record.name, record.role)


def csrf_token() -> str:
    """This session's CSRF token (made on first use, so the login form has one too)."""
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return token


def check_csrf() -> None:
    """Refuse a state-changing request whose form does not carry this session's CSRF token."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    expected = session.get(CSRF_FIELD)
    given = request.form.get(CSRF_FIELD, "")
    if (
        not isinstance(expected, str)
        or not expected
        or not hmac.compare_digest(expected.encode(), given.encode())
    ):
        raise CsrfRejected(
            "The form was stale or did not come from this site. Reload the page and try again."
        )


def _require(roles: tuple[str, ...]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            user = current_user()
            if user is None:
                if request.method != "GET":
                    raise Forbidden("Sign in first.")
                return cast(R, redirect(url_for("web.login", next=request.full_path.rstrip("?"))))
            if user.role not in roles:
                raise Forbidden(f"The {user.role} role may not do this.")
            return view(*args, **kwargs)

        return wrapper

    return decorator


reader_page = _require(READER_ROLES)
admin_page = _require(("admin",))


def safe_next(target: str | None) -> str:
    """Where to go after signing in: only a path of these pages, never another site."""
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("web.leases")
