"""Who is calling (authentication) and whether they may (authorization), as view decorators.

A bearer value starting with ``trn_`` is a broker token (admin or auditor); anything else is a CI job's
OIDC ID token, verified only on the routes that accept workloads.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar, cast

from flask import g, request

from app.audit.ledger import Actor
from app.decision.reasons import NOT_AN_APPROVER, Reason
from app.errors import Forbidden, Unauthorized
from app.identity.workload import VerifiedToken
from app.request_context import config_snapshot, db_session, runtime
from app.tokens.service import TOKEN_PREFIX, authenticate_token

P = ParamSpec("P")
R = TypeVar("R")

# OpenAPI security schemes (registered by the app factory); each decorator documents the ones it accepts.
BROKER_TOKEN = "brokerToken"
CI_TOKEN = "ciToken"
SECURITY_SCHEMES = {
    BROKER_TOKEN: {
        "type": "http",
        "scheme": "bearer",
        "description": "A broker API token (`trn_...`) of an admin or an auditor",
    },
    CI_TOKEN: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "The CI job's OIDC ID token, from a registered issuer",
    },
}


def _documents_security(wrapper: Callable[P, R], *schemes: str) -> Callable[P, R]:
    """Add ``security`` to the view's OpenAPI operation (flask-smorest reads ``_apidoc`` when the route is
    registered, which happens after these decorators ran)."""
    apidoc = dict(getattr(wrapper, "_apidoc", {}))
    manual = dict(apidoc.get("manual_doc", {}))
    manual["security"] = [{scheme: []} for scheme in schemes]
    apidoc["manual_doc"] = manual
    wrapper._apidoc = apidoc  # type: ignore[attr-defined]
    return wrapper


@dataclass(frozen=True, slots=True)
class BrokerCaller:
    name: str
    role: str  # admin | auditor | approver
    ci_login: str | None = None  # the person's CI login, for the self-approval rule


def _bearer() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if not header:
        raise Unauthorized("This route needs a bearer credential in the Authorization header.")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("The Authorization header must be 'Bearer <credential>'.")
    return value.strip()


def _broker_caller(value: str) -> BrokerCaller:
    record = authenticate_token(db_session(), value, runtime().clock.now())  # notes last_used_at
    db_session().commit()  # the note of use, whatever the request's own work does
    if record is None:
        raise Unauthorized("The broker token is unknown, revoked or expired.")
    caller = BrokerCaller(record.name, record.role, record.ci_login)
    g.caller = caller
    g.actor = Actor(record.role, record.name)
    return caller


def _require_roles(*roles: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            value = _bearer()
            if not value.startswith(TOKEN_PREFIX):
                raise Forbidden("CI tokens may only use the lease routes.")
            caller = _broker_caller(value)
            if caller.role not in roles:
                raise Forbidden(f"The {caller.role} role may not do this.")
            return view(*args, **kwargs)

        return _documents_security(wrapper, BROKER_TOKEN)

    return decorator


require_admin = _require_roles("admin")
# Approvers read what auditors read (docs/API.md, "Authentication").
require_reader = _require_roles("admin", "auditor", "approver")


def require_broker_token(view: Callable[P, R]) -> Callable[P, R]:
    """Any broker token; what its role may do is the service's to say, with a reason (approving: an auditor
    is refused ``not_an_approver``, docs/API.md)."""

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        value = _bearer()
        if not value.startswith(TOKEN_PREFIX):
            reason = Reason(NOT_AN_APPROVER, "a CI token cannot approve or deny requests")
            raise Forbidden("CI tokens may only use the lease routes.", reasons=[reason])
        _broker_caller(value)
        return view(*args, **kwargs)

    return _documents_security(wrapper, BROKER_TOKEN)


def current_caller() -> BrokerCaller | None:
    return cast(BrokerCaller | None, g.get("caller"))


def current_workload() -> VerifiedToken:
    token = g.get("workload")
    if token is None:
        raise RuntimeError("no verified workload on this request")
    return cast(VerifiedToken, token)


WorkloadVerifier = Callable[[str], VerifiedToken]


def _verify_workload(value: str) -> VerifiedToken:
    verify: WorkloadVerifier = runtime().workload_verifier(db_session(), config_snapshot)
    token = verify(value)
    g.workload = token
    g.actor = Actor("ci", token.identity.actor_id())
    return token


def require_workload(view: Callable[P, R]) -> Callable[P, R]:
    """CI routes: the caller must present a valid OIDC ID token of a registered issuer."""

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        value = _bearer()
        if value.startswith(TOKEN_PREFIX):
            raise Forbidden("This route is for CI jobs; broker tokens cannot use it.")
        _verify_workload(value)
        return view(*args, **kwargs)

    return _documents_security(wrapper, CI_TOKEN)


def require_workload_or_reader(view: Callable[P, R]) -> Callable[P, R]:
    """Reading a lease: its own workload, an auditor or an admin (ownership is checked by the service)."""

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        value = _bearer()
        if value.startswith(TOKEN_PREFIX):
            _broker_caller(value)
        else:
            _verify_workload(value)
        return view(*args, **kwargs)

    return _documents_security(wrapper, CI_TOKEN, BROKER_TOKEN)
