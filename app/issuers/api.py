from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from app.auth import require_admin, require_reader
from app.http import current_actor, db_session, ledger, runtime
from app.issuers.models import Issuer
from app.issuers.schemas import IssuerPageSchema, IssuerRequestSchema, IssuerSchema
from app.issuers.service import IssuerService, policies_using_issuer
from app.leases.http import reevaluate_after_change
from app.schemas import PageQuerySchema, page_of, problem_responses

bp = Blueprint("issuers", __name__, url_prefix="/v1/issuers", description="OIDC issuers (admin)")


def _service() -> IssuerService:
    rt = runtime()
    return IssuerService(db_session(), rt.clock, ledger(), allow_insecure=rt.settings.allow_insecure_issuers)


@bp.post("")
@require_admin
@bp.arguments(IssuerRequestSchema, error_status_code=400)
@bp.response(201, IssuerSchema)
@problem_responses(bp, 400, 401, 403, 409, 413, 415, 503)
def create_issuer(body: dict[str, Any]) -> Issuer:
    issuer = _service().create_issuer(body, actor=current_actor())
    db_session().commit()
    return issuer


@bp.get("")
@require_reader
@bp.arguments(PageQuerySchema, location="query", error_status_code=400)
@bp.response(200, IssuerPageSchema)
@problem_responses(bp, 400, 401, 403, 503)
def list_issuers(query: dict[str, Any]) -> dict[str, Any]:
    return page_of(query, lambda limit, before: _service().list_issuers(limit=limit, before_id=before))


@bp.get("/<name>")
@require_reader
@bp.response(200, IssuerSchema)
@problem_responses(bp, 401, 403, 404, 503)
def get_issuer(name: str) -> Issuer:
    return _service().get_issuer(name)


@bp.put("/<name>")
@require_admin
@bp.arguments(IssuerRequestSchema(partial=("name",)), error_status_code=400)
@bp.response(200, IssuerSchema)
@problem_responses(bp, 400, 401, 403, 404, 409, 413, 415, 503)
def replace_issuer(body: dict[str, Any], name: str) -> Issuer:
    issuer = _service().replace_issuer(name, body, actor=current_actor())
    db_session().commit()
    reevaluate_after_change(policies=policies_using_issuer(db_session(), name))
    return issuer


@bp.delete("/<name>")
@require_admin
@bp.response(204)
@problem_responses(bp, 401, 403, 404, 409, 503)
def delete_issuer(name: str) -> None:
    _service().delete_issuer(name, actor=current_actor())
    db_session().commit()
