from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from app import crud
from app.request_context import current_actor, db_session, ledger, runtime
from app.schemas import PageQuerySchema
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


@crud.CREATED(bp, WindowSchema, body=WindowRequestSchema)
def create_window(body: dict[str, Any]) -> Window:
    # No policy names a window before it exists: nothing to re-evaluate.
    return crud.committed(_service().create_window(body, actor=current_actor()))


@crud.LISTED(bp, WindowPageSchema, query=PageQuerySchema)
def list_windows(query: dict[str, Any]) -> dict[str, Any]:
    return crud.paged(query, _service().list_windows)


@crud.QUERIED(bp, CalendarSchema, path="/calendar", query=CalendarQuerySchema)
def calendar(query: dict[str, Any]) -> dict[str, Any]:
    """Per policy, the week ahead: window occurrences, applicable freezes, and when deploys are possible."""
    start = query["from_"] or runtime().clock.now()
    return _service().week(start, query["days"], query["policy"])


@crud.FETCHED(bp, WindowSchema)
def get_window(name: str) -> Window | BuiltinWindow:
    return _service().get_window(name)


@crud.REPLACED(bp, WindowSchema, body=crud.replacing(WindowRequestSchema))
def replace_window(body: dict[str, Any], name: str) -> Window:
    service = _service()
    window = service.replace_window(name, body, actor=current_actor())
    return crud.commit_then_reevaluate(window, policies=service.policies_using(name))


@crud.DELETED(bp)
def delete_window(name: str) -> None:
    _service().delete_window(name, actor=current_actor())
    db_session().commit()


@crud.QUERIED(bp, OccurrencesSchema, path="/<name>/occurrences", query=RangeQuerySchema)
def window_occurrences(query: dict[str, Any], name: str) -> Occurrences:
    return _service().occurrences(name, query["from_"], query["to"])
