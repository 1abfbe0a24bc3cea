"""Friendly HTML errors for the pages; the API keeps its problem JSON (app/errors.py) untouched."""

from __future__ import annotations

import logging
import uuid

from flask import g, render_template
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from app.errors import AppError
from app.vault.port import VaultError
from app.web.blueprint import bp

log = logging.getLogger(__name__)

HTTP_DETAILS = {
    400: "The request could not be read.",
    404: "There is nothing at this address.",
    405: "This page cannot be used that way.",
    413: "The form is larger than the limit.",
}


def _messages(exc: ValidationError) -> list[str]:
    messages = exc.messages if isinstance(exc.messages, dict) else {"form": exc.messages}
    return [f"{field}: {'; '.join(map(str, errors))}" for field, errors in messages.items()]


@bp.errorhandler(Exception)
def friendly_error(exc: Exception) -> tuple[str, int] | Response | HTTPException:
    """Every error raised while serving a page, as a page (never a stack trace or an exception's text)."""
    problems: list[str] = []
    if isinstance(exc, HTTPException):
        if exc.code is not None and exc.code < 400:
            return exc
        status, title = exc.code or 500, exc.name
        detail = HTTP_DETAILS.get(status, exc.name)
    elif isinstance(exc, AppError):
        status, title, detail = exc.status, exc.title, exc.detail
    elif isinstance(exc, ValidationError):
        status, title, detail = 400, "Some fields are not valid", "Correct them and try again."
        problems = _messages(exc)
    elif isinstance(exc, VaultError):
        status, title = 503, "Vault is unavailable"
        detail = f"Vault did not answer ({exc.error_class}). Try again shortly."
    else:
        request_id = g.get("request_id") or uuid.uuid4().hex
        log.exception("unhandled error on a page (request id %s)", request_id)
        status, title = 500, "Something went wrong"
        detail = f"The page could not be shown. Request id: {request_id}."
    page = render_template("web/error.html", status=status, title=title, detail=detail, problems=problems)
    return page, status
