"""One error family, one wire shape: RFC 9457 problem details.

Known errors carry their status, type and reasons. Anything else becomes a 500 with a generic detail and
a request id that is also in the log — never the exception's text, which may hold SQL or secret values.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from flask import Flask, Response, g, json
from marshmallow import ValidationError
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from app.decision.reasons import Reason
from app.identity.errors import IssuerUnavailable, TokenRejected
from app.vault.port import VaultError, VaultRejected

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://transom.dev/problems/"


class AppError(Exception):
    status = 500
    type_ = "internal"
    title = "Internal error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        reasons: Sequence[Reason] = (),
        errors: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.reasons = tuple(reasons)
        self.errors = dict(errors) if errors else None
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


class BadRequest(AppError):
    status, type_, title = 400, "bad-request", "Bad request"


class Unauthorized(AppError):
    status, type_, title = 401, "unauthorized", "Unauthorized"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="transom"'})
        super().__init__(detail, **kwargs)


class Forbidden(AppError):
    status, type_, title = 403, "forbidden", "Forbidden"


class PolicyDenied(Forbidden):
    type_, title = "policy-denied", "Request denied by policy"


class NotFound(AppError):
    status, type_, title = 404, "not-found", "Not found"


class Conflict(AppError):
    status, type_, title = 409, "conflict", "Conflict"


class BadGateway(AppError):
    status, type_, title = 502, "bad-gateway", "Vault refused the request"


class ServiceUnavailable(AppError):
    status, type_, title = 503, "unavailable", "A dependency is unavailable"


def problem(
    status: int,
    title: str,
    detail: str,
    type_: str,
    *,
    reasons: Sequence[Reason] = (),
    errors: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    body: dict[str, Any] = {"type": TYPE_BASE + type_, "title": title, "status": status, "detail": detail}
    if reasons or status in (401, 403):
        body["reasons"] = [r.to_dict() for r in reasons]
    if errors:
        body["errors"] = errors
    if extra:
        body.update(extra)
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _from_app_error(exc: AppError) -> Response:
    return problem(
        exc.status,
        exc.title,
        exc.detail,
        exc.type_,
        reasons=exc.reasons,
        errors=exc.errors,
        headers=exc.headers,
        extra=exc.extra,
    )


def _from_validation_error(exc: ValidationError) -> Response:
    messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
    return problem(
        400, "Invalid request", "The request has invalid fields.", "invalid-request", errors=messages
    )


def _from_http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    errors = None
    # flask-smorest/webargs put the field errors of a failed parse here.
    data = getattr(exc, "data", None)
    if isinstance(data, dict) and isinstance(data.get("messages"), dict):
        errors = _flatten_locations(data["messages"])
        status = 400 if status == 422 else status
    detail = {
        400: "The request could not be read.",
        404: "There is nothing at this address.",
        405: "This method is not allowed here.",
        413: "The request body is larger than the limit.",
        415: "The request body must be JSON (Content-Type: application/json).",
    }.get(status, exc.description or exc.name)
    title = "Invalid request" if errors else exc.name
    # A 405 must say what is allowed (RFC 9110 15.5.6); werkzeug's exception knows it.
    allowed = exc.valid_methods if isinstance(exc, MethodNotAllowed) else None
    allow = {"Allow": ", ".join(allowed)} if allowed else None
    return problem(status, title, detail, exc.name.lower().replace(" ", "-"), errors=errors, headers=allow)


def _flatten_locations(messages: dict[str, Any]) -> dict[str, Any]:
    """webargs nests errors by location (``{"json": {...}}``); clients want the fields."""
    flat: dict[str, Any] = {}
    for location_errors in messages.values():
        if isinstance(location_errors, dict):
            flat.update(location_errors)
    return flat or messages


def _from_unexpected(exc: Exception) -> Response:
    request_id = getattr(g, "request_id", None) or uuid.uuid4().hex
    log.exception("unhandled error (request id %s)", request_id)
    return problem(
        500,
        "Internal error",
        f"The broker could not complete the request. Request id: {request_id}.",
        "internal",
        extra={"request_id": request_id},
    )


def _from_token_rejected(exc: TokenRejected) -> Response:
    return problem(
        401,
        "Invalid CI token",
        exc.message,
        "invalid-token",
        reasons=[exc.reason()],
        headers={"WWW-Authenticate": 'Bearer realm="transom", error="invalid_token"'},
    )


def _from_issuer_unavailable(exc: IssuerUnavailable) -> Response:
    return problem(
        503,
        "Issuer unavailable",
        f"The keys of issuer {exc.issuer_name!r} cannot be had right now; nothing was granted.",
        "issuer-unavailable",
        reasons=[exc.reason()],
        headers={"Retry-After": "30"},
    )


def _from_vault_error(exc: VaultError) -> Response:
    if isinstance(exc, VaultRejected):
        return problem(
            502, "Vault refused the request", f"Vault refused ({exc.error_class}).", "vault-rejected"
        )
    return problem(
        503,
        "Vault unavailable",
        f"Vault is unavailable ({exc.error_class}); nothing was granted.",
        "vault-unavailable",
        reasons=[Reason("vault_unavailable", "Vault did not answer; try again shortly")],
        headers={"Retry-After": "5"},
    )


def _from_database_error(exc: DBAPIError) -> Response:
    """A lost or refusing database is a dependency outage (503: fail closed, retry), not a bug; a value the
    database cannot hold (a NUL character on PostgreSQL, a number out of range) is bad input (400). Only the
    driver's class name is logged: the exception's text carries the SQL and its parameters."""
    cause = type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__
    if isinstance(exc, DataError):
        log.warning("the database refused a value of the request (%s)", cause)
        return problem(
            400,
            "Invalid request",
            "A value in the request cannot be stored or compared (for example, a NUL character).",
            "invalid-value",
        )
    if isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated:
        log.warning("database unavailable (%s)", cause)
        return problem(
            503,
            "Database unavailable",
            "The database did not answer; nothing was changed. Try again shortly.",
            "database-unavailable",
            reasons=[Reason("database_unavailable", "The database did not answer; try again shortly")],
            headers={"Retry-After": "5"},
        )
    return _from_unexpected(exc)


def init_app(app: Flask) -> None:
    app.register_error_handler(AppError, _from_app_error)
    app.register_error_handler(TokenRejected, _from_token_rejected)
    app.register_error_handler(IssuerUnavailable, _from_issuer_unavailable)
    app.register_error_handler(VaultError, _from_vault_error)
    app.register_error_handler(DBAPIError, _from_database_error)
    app.register_error_handler(ValidationError, _from_validation_error)
    app.register_error_handler(HTTPException, _from_http_exception)
    app.register_error_handler(Exception, _from_unexpected)
