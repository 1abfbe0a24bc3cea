"""Approvals: the pending requests, with what people need to judge them, and approve or deny buttons.

Approver and admin tokens decide; auditors see the page and are refused (``not_an_approver``) like the API
refuses them. The forms carry the session's CSRF token (checked for every page POST by the app factory).
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, url_for
from flask import request as http_request
from marshmallow import Schema, fields, validate
from sqlalchemy import select
from werkzeug.wrappers import Response

from app.approvals import queries
from app.approvals.models import ApprovalStatus
from app.approvals.service import APPROVE, DENY, ApprovalService, Approver
from app.errors import AppError
from app.request_context import config_snapshot, db_session, runtime
from app.tokens.models import ApiToken
from app.web.blueprint import bp
from app.web.login import current_user, reader_page

PAGE_SIZE = 100


class DecisionForm(Schema):
    comment = fields.String(load_default=None, validate=validate.Length(max=1000))
    csrf_token = fields.String(load_default=None)


def run_link(workload: dict[str, Any], issuer_url: str | None) -> str | None:
    """A link to the CI run, where the platform's address is known from the issuer."""
    repository, run = workload.get("repository"), workload.get("pipeline_id")
    if not repository or not run or not issuer_url:
        return None
    if issuer_url.rstrip("/") == "https://token.actions.githubusercontent.com":
        return f"https://github.com/{repository}/actions/runs/{run}"
    if "gitlab" in issuer_url:
        return f"{issuer_url.rstrip('/')}/{repository}/-/pipelines/{run}"
    return None


@bp.get("/approvals")
@reader_page
def approvals() -> str:
    session = db_session()
    config = config_snapshot()
    found = queries.page(session, {"status": ApprovalStatus.PENDING}, limit=PAGE_SIZE, after=None)
    issuers = {issuer.name: url for url, issuer in config.issuers.items()}
    items = [
        {**item, "run_link": run_link(item["workload"], issuers.get(str(item["workload"].get("issuer"))))}
        for item in queries.shown_page(session, found, config)
    ]
    user = current_user()
    return render_template(
        "web/approvals.html", items=items, can_decide=user is not None and user.role in ("admin", "approver")
    )


def _decide(request_id: str, verdict: str) -> Response:
    form = DecisionForm().load(http_request.form)
    user = current_user()
    assert user is not None
    session = db_session()
    ci_login = session.scalar(select(ApiToken.ci_login).where(ApiToken.name == user.name))
    rt = runtime()
    service = ApprovalService(session, rt.clock, notify=rt.settings.notify_webhook_url is not None)
    try:
        decided = service.decide(
            request_id,
            Approver(user.name, user.role, ci_login),
            verdict,
            form["comment"],
            config_snapshot().policy,
        )
    except AppError as refused:
        session.rollback()
        because = "; ".join(f"{r.code}: {r.message}" for r in refused.reasons)
        flash(f"{refused.detail}{' (' + because + ')' if because else ''}", "bad")
        return redirect(url_for("web.approvals"), code=303)
    session.commit()
    flash(f"{decided.id} is {decided.status}.", "ok")
    return redirect(url_for("web.approvals"), code=303)


@bp.post("/approvals/<request_id>/approve")
@reader_page
def approve_request(request_id: str) -> Response:
    return _decide(request_id, APPROVE)


@bp.post("/approvals/<request_id>/deny")
@reader_page
def deny_request(request_id: str) -> Response:
    return _decide(request_id, DENY)
