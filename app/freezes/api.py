from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from app.auth import require_admin, require_reader
from app.freezes.schemas import FreezePageSchema, FreezeRequestSchema, FreezeSchema
from app.freezes.service import FreezeService, governed_policies
from app.http import current_actor, db_session, ledger, runtime
from app.leases.http import reevaluate_after_change
from app.schemas import PageQuerySchema, page_of, problem_responses
from app.windows.models import Freeze
from app.windows.schemas import OccurrencesSchema, RangeQuerySchema
from app.windows.service import Occurrences

bp = Blueprint("freezes", __name__, url_prefix="/v1/freezes", description="Change freezes (admin)")


def _service() -> FreezeService:
    return FreezeService(db_session(), runtime().clock, ledger())


@bp.post("")
@require_admin
@bp.arguments(FreezeRequestSchema, error_status_code=400)
@bp.response(201, FreezeSchema)
@problem_responses(bp, 400, 401, 403, 409, 413, 415, 503)
def create_freeze(body: dict[str, Any]) -> Freeze:
    freeze = _service().create_freeze(body, actor=current_actor())
    db_session().commit()
    # A freeze that covers now revokes the leases it covers at once (end reason "freeze").
    reevaluate_after_change(policies=governed_policies(db_session(), freeze.policies))
    return freeze


@bp.get("")
@require_reader
@bp.arguments(PageQuerySchema, location="query", error_status_code=400)
@bp.response(200, FreezePageSchema)
@problem_responses(bp, 400, 401, 403, 503)
def list_freezes(query: dict[str, Any]) -> dict[str, Any]:
    return page_of(query, lambda limit, before: _service().list_freezes(limit=limit, before_id=before))


@bp.get("/<name>")
@require_reader
@bp.response(200, FreezeSchema)
@problem_responses(bp, 401, 403, 404, 503)
def get_freeze(name: str) -> Freeze:
    return _service().get_freeze(name)


@bp.put("/<name>")
@require_admin
@bp.arguments(FreezeRequestSchema(partial=("name",)), error_status_code=400)
@bp.response(200, FreezeSchema)
@problem_responses(bp, 400, 401, 403, 404, 409, 413, 415, 503)
def replace_freeze(body: dict[str, Any], name: str) -> Freeze:
    freeze, governed = _service().replace_freeze(name, body, actor=current_actor())
    db_session().commit()
    reevaluate_after_change(policies=governed)
    return freeze


@bp.delete("/<name>")
@require_admin
@bp.response(204)
@problem_responses(bp, 401, 403, 404, 409, 503)
def delete_freeze(name: str) -> None:
    _service().delete_freeze(name, actor=current_actor())
    db_session().commit()


@bp.get("/<name>/occurrences")
@require_reader
@bp.arguments(RangeQuerySchema, location="query", error_status_code=400)
@bp.response(200, OccurrencesSchema)
@problem_responses(bp, 400, 401, 403, 404, 503)
def freeze_occurrences(query: dict[str, Any], name: str) -> Occurrences:
    return _service().occurrences(name, query["from_"], query["to"])
