"""Admin actions on the pages: bulk revoke by filter, with a confirmation step."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy import func
from werkzeug.wrappers import Response

from app.errors import BadRequest
from app.leases import queries as lease_queries
from app.leases.models import Lease, LeaseStatus
from app.leases.wiring import lease_service
from app.request_context import db_session
from app.web.blueprint import bp
from app.web.forms import BULK_FILTERS, BulkRevokeForm, as_query
from app.web.login import admin_page, current_user

PREVIEW_SIZE = 100


def lease_count(filters: dict[str, Any]) -> int:
    query = lease_queries.filtered(filters).with_only_columns(func.count()).order_by(None)
    return int(db_session().scalar(query) or 0)


@bp.get("/revoke")
@admin_page
def bulk_revoke() -> str:
    """The filter form; with a filter, the active leases it matches and the button that revokes them."""
    form = BulkRevokeForm().load(request.args)
    filters = {name: form[name] for name in BULK_FILTERS if name in form}
    matching: list[Lease] = []
    count = 0
    if filters:
        active = {**filters, "status": LeaseStatus.ACTIVE}
        count = lease_count(active)
        matching = list(lease_queries.page(db_session(), active, limit=PREVIEW_SIZE, after=None))
    return render_template(
        "web/bulk_revoke.html",
        filters=as_query(filters),
        reason=form.get("reason") or "",
        matching=matching,
        count=count,
    )


@bp.post("/revoke")
@admin_page
def bulk_revoke_confirm() -> Response:
    form = BulkRevokeForm().load(request.form)
    filters = {name: form[name] for name in BULK_FILTERS if name in form}
    if not filters:
        raise BadRequest("Name at least one of policy, secret, repository, branch, issuer.")
    user = current_user()
    assert user is not None
    query = lease_queries.filtered({**filters, "status": LeaseStatus.ACTIVE})
    ids = list(db_session().scalars(query.with_only_columns(Lease.id)))
    revoked = lease_service().revoke_matching(ids, note=form.get("reason"), actor=user.actor())
    flash(f"Revoked {revoked} lease{'s' if revoked != 1 else ''} matching the filter.", "ok")
    return redirect(f"{url_for('web.leases')}?{urlencode(as_query(filters))}", code=303)
