"""The ledger for auditors: events (filters, exports) with the log's state, one event's place in the log,
log verification, refusals by reason."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import render_template, request
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from app.audit import queries as audit_queries
from app.audit.ledger import event_to_dict
from app.audit.log_service import LogService
from app.audit.models import AuditEvent
from app.errors import NotFound
from app.exports import export_response
from app.request_context import db_session, runtime
from app.web.blueprint import bp
from app.web.denial_groups import group_denials, total_requests
from app.web.forms import DenialsForm, EventFilterForm, as_query, without
from app.web.log_summary import event_place, log_summary
from app.web.login import reader_page

PAGE_SIZE = 100
DENIALS_SHOWN = 1000
DEFAULT_DENIALS_SPAN = timedelta(days=7)


@bp.get("/events")
@reader_page
def events() -> tuple[str, int]:
    errors: list[str] = []
    try:
        form = EventFilterForm().load(request.args)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {}
        errors = [f"{field}: {'; '.join(map(str, errs))}" for field, errs in messages.items()]
        form = {}
    filters = without(form, "cursor")
    page: dict[str, Any] = {"items": [], "next_cursor": None}
    if not errors:
        page = audit_queries.json_page(
            db_session(), {**form, "limit": PAGE_SIZE, "cursor": form.get("cursor")}
        )
    body = render_template(
        "web/events.html",
        events=page["items"],
        next_cursor=page["next_cursor"],
        paged=bool(form.get("cursor")),
        filters=as_query(filters) if not errors else without(request.args.to_dict(), "cursor"),
        errors=errors,
        log=log_summary(db_session(), runtime().clock.now()),
    )
    return body, 400 if errors else 200


@bp.get("/events/<int:event_id>")
@reader_page
def event(event_id: int) -> str:
    session = db_session()
    found = session.get(AuditEvent, event_id) if event_id < 2**63 else None
    if found is None:
        raise NotFound(f"no event with id {event_id}")
    return render_template(
        "web/event.html",
        event=event_to_dict(found),
        place=event_place(session, event_id, runtime().clock.now()),
    )


@bp.get("/events.<any(csv, jsonl):fmt>")
@reader_page
def event_export(fmt: str) -> Response:
    filters = without(EventFilterForm().load(request.args), "cursor")
    db_session().commit()
    return export_response(
        lambda: audit_queries.export_rows(runtime().read_sessions, filters),
        fmt,
        audit_queries.EXPORT_COLUMNS,
        "audit",
    )


@bp.get("/verify")
@reader_page
def verify() -> str:
    db_session().commit()
    rt = runtime()
    with rt.read_sessions() as session:
        result = LogService(session, rt.ledger_signer, rt.settings.ledger_origin).verify()
    return render_template("web/verify.html", result=result)


@bp.get("/denials")
@reader_page
def denials() -> str:
    form = DenialsForm().load(request.args)
    now = runtime().clock.now()
    after = form.get("after") or now - DEFAULT_DENIALS_SPAN
    found = audit_queries.recent_denials(
        db_session(), since=after, until=form.get("before"), limit=DENIALS_SHOWN
    )
    groups = group_denials(found)
    return render_template(
        "web/denials.html",
        groups=groups,
        total=total_requests(groups),
        events=len(found),
        capped=len(found) >= DENIALS_SHOWN,
        filters=as_query({"after": after, "before": form.get("before")}),
    )
