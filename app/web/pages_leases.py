"""Leases: the filterable table, its exports, one lease with its timeline, and an admin's revoke."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from app.audit import queries as audit_queries
from app.exports import export_response
from app.leases import queries as lease_queries
from app.leases.models import LeaseStatus
from app.leases.schemas import STATUSES
from app.leases.wiring import lease_service
from app.request_context import db_session, runtime
from app.schemas import decode_cursor, encode_cursor
from app.web.blueprint import bp
from app.web.forms import LeaseFilterForm, RevokeForm, as_query, without
from app.web.login import admin_page, current_user, reader_page
from app.web.timeline import timeline

PAGE_SIZE = 50


def _filters() -> tuple[dict[str, Any], list[str]]:
    try:
        return LeaseFilterForm().load(request.args), []
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {}
        return {}, [f"{field}: {'; '.join(map(str, errors))}" for field, errors in messages.items()]


@bp.get("/leases")
@reader_page
def leases() -> tuple[str, int]:
    form, errors = _filters()
    filters = without(form, "cursor")
    rows: list[Any] = []
    next_cursor = None
    if not errors:
        after = lease_queries.position(decode_cursor(form["cursor"], 2)) if form.get("cursor") else None
        found = lease_queries.page(db_session(), filters, limit=PAGE_SIZE + 1, after=after)
        rows = list(found[:PAGE_SIZE])
        if len(found) > PAGE_SIZE:
            next_cursor = encode_cursor(lease_queries.cursor_of(rows[-1]))
    page = render_template(
        "web/leases.html",
        leases=rows,
        filters=as_query(filters) if not errors else without(request.args.to_dict(), "cursor"),
        next_cursor=next_cursor,
        paged=bool(form.get("cursor")),
        errors=errors,
        statuses=STATUSES,
    )
    return page, 400 if errors else 200


@bp.get("/leases.<any(csv, jsonl):fmt>")
@reader_page
def lease_export(fmt: str) -> Response:
    filters = without(LeaseFilterForm().load(request.args), "cursor")
    db_session().commit()
    return export_response(
        lambda: lease_queries.export_rows(runtime().read_sessions, filters),
        fmt,
        lease_queries.EXPORT_COLUMNS,
        "leases",
    )


@bp.get("/leases/<lease_id>")
@reader_page
def lease(lease_id: str) -> str:
    found = lease_service().get_lease(lease_id, workload=None)
    session = db_session()
    events = audit_queries.lease_timeline(session, found.id)
    denials = audit_queries.pipeline_denials(
        session, repository=found.repository, pipeline_id=found.pipeline_id
    )
    return render_template(
        "web/lease.html",
        lease=found,
        entries=timeline(found, events),
        denials=denials,
        can_revoke=found.status == LeaseStatus.ACTIVE,
    )


@bp.post("/leases/<lease_id>/revoke")
@admin_page
def revoke_lease(lease_id: str) -> Response:
    form = RevokeForm().load(request.form)
    user = current_user()
    assert user is not None
    ended = lease_service().revoke_lease(lease_id, note=form["reason"], actor=user.actor())
    if ended.status == LeaseStatus.REVOKING:
        flash("Revocation requested; Vault has not confirmed yet and the broker keeps trying.", "warn")
    else:
        flash("The lease is revoked; Vault confirmed it.", "ok")
    return redirect(url_for("web.lease", lease_id=lease_id), code=303)
