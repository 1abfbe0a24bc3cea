from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from app import crud
from app.freezes.schemas import FreezePageSchema, FreezeRequestSchema, FreezeSchema
from app.freezes.service import FreezeService, governed_policies
from app.request_context import current_actor, db_session, ledger, runtime
from app.schemas import PageQuerySchema
from app.windows.models import Freeze
from app.windows.schemas import OccurrencesSchema, RangeQuerySchema
from app.windows.service import Occurrences

bp = Blueprint("freezes", __name__, url_prefix="/v1/freezes", description="Change freezes (admin)")


def _service() -> FreezeService:
    return FreezeService(db_session(), runtime().clock, ledger())


@crud.CREATED(bp, FreezeSchema, body=FreezeRequestSchema)
def create_freeze(body: dict[str, Any]) -> Freeze:
    freeze = _service().create_freeze(body, actor=current_actor())
    # A freeze that covers now revokes the leases it covers at once (end reason "freeze").
    return crud.commit_then_reevaluate(freeze, policies=governed_policies(db_session(), freeze.policies))


@crud.LISTED(bp, FreezePageSchema, query=PageQuerySchema)
def list_freezes(query: dict[str, Any]) -> dict[str, Any]:
    return crud.paged(query, _service().list_freezes)


@crud.FETCHED(bp, FreezeSchema)
def get_freeze(name: str) -> Freeze:
    return _service().get_freeze(name)


@crud.REPLACED(bp, FreezeSchema, body=crud.replacing(FreezeRequestSchema))
def replace_freeze(body: dict[str, Any], name: str) -> Freeze:
    freeze, governed = _service().replace_freeze(name, body, actor=current_actor())
    return crud.commit_then_reevaluate(freeze, policies=governed)  # governed before or now


@crud.DELETED(bp)
def delete_freeze(name: str) -> None:
    # Without the freeze, leases are allowed more, never less: none to end.
    _service().delete_freeze(name, actor=current_actor())
    db_session().commit()


@crud.QUERIED(bp, OccurrencesSchema, path="/<name>/occurrences", query=RangeQuerySchema)
def freeze_occurrences(query: dict[str, Any], name: str) -> Occurrences:
    return _service().occurrences(name, query["from_"], query["to"])
