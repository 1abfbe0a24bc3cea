from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from app.auth import require_admin, require_reader
from app.http import current_actor, db_session, ledger, runtime
from app.leases.http import reevaluate_after_change
from app.schemas import PageQuerySchema, page_of, problem_responses
from app.windows.models import Window
from app.windows.schemas import (
    CalendarQuerySchema,
    CalendarSchema,
    OccurrencesSchema,
    RangeQuerySchema,
    WindowPageSchema,
    WindowRequestSchema,
    WindowSchema,
)
from app.windows.service import BuiltinWindow, Occurrences, WindowService

bp = Blueprint("windows", __name__, url_prefix="/v1/windows", description="Deployment windows (admin)")


def _service() -> WindowService:
    return WindowService(db_session(), runtime().clock, ledger())


@bp.post("")
@require_admin
@bp.arguments(WindowRequestSchema, error_status_code=400)
@bp.response(201, WindowSchema)
@problem_responses(bp, 400, 401, 403, 409, 413, 415, 503)
def create_window(body: dict[str, Any]) -> Window:
    window = _service().create_window(body, actor=current_actor())
    db_session().commit()
    return window


@bp.get("")
@require_reader
@bp.arguments(PageQuerySchema, location="query", error_status_code=400)
@bp.response(200, WindowPageSchema)
@problem_responses(bp, 400, 401, 403, 503)
def list_windows(query: dict[str, Any]) -> dict[str, Any]:
    return page_of(query, lambda limit, before: _service().list_windows(limit=limit, before_id=before))


@bp.get("/calendar")
@require_reader
@bp.arguments(CalendarQuerySchema, location="query", error_status_code=400)
@bp.response(200, CalendarSchema)
@problem_responses(bp, 400, 401, 403, 404, 503)
def calendar(query: dict[str, Any]) -> dict[str, Any]:
    """Per policy, the week ahead: window occurrences, applicable freezes, and when deploys are possible."""
    start = query["from_"] or runtime().clock.now()
    return _service().week(start, query["days"], query["policy"])


@bp.get("/<name>")
@require_reader
@bp.response(200, WindowSchema)
@problem_responses(bp, 401, 403, 404, 503)
def get_window(name: str) -> Window | BuiltinWindow:
    return _service().get_window(name)


@bp.put("/<name>")
@require_admin
@bp.arguments(WindowRequestSchema(partial=("name",)), error_status_code=400)
@bp.response(200, WindowSchema)
@problem_responses(bp, 400, 401, 403, 404, 409, 413, 415, 503)
def replace_window(body: dict[str, Any], name: str) -> Window:
    service = _service()
    window = service.replace_window(name, body, actor=current_actor())
    db_session().commit()
    reevaluate_after_change(policies=service.policies_using(name))
    return window


@bp.delete("/<name>")
@require_admin
@bp.response(204)
@problem_responses(bp, 401, 403, 404, 409, 503)
def delete_window(name: str) -> None:
    _service().delete_window(name, actor=current_actor())
    db_session().commit()


@bp.get("/<name>/occurrences")
@require_reader
@bp.arguments(RangeQuerySchema, location="query", error_status_code=400)
@bp.response(200, OccurrencesSchema)
@problem_responses(bp, 400, 401, 403, 404, 503)
def window_occurrences(query: dict[str, Any], name: str) -> Occurrences:
    return _service().occurrences(name, query["from_"], query["to"])
