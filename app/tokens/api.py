from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from app.auth import require_admin, require_reader
from app.http import current_actor, db_session, ledger, runtime
from app.schemas import PageQuerySchema, page_of, problem_responses
from app.tokens.schemas import NewTokenSchema, TokenPageSchema, TokenRequestSchema
from app.tokens.service import TokenService

bp = Blueprint("tokens", __name__, url_prefix="/v1/tokens", description="Broker API tokens (admin)")


def _service() -> TokenService:
    return TokenService(db_session(), runtime().clock, ledger())


@bp.post("")
@require_admin
@bp.arguments(TokenRequestSchema, error_status_code=400)
@bp.response(201, NewTokenSchema)
@problem_responses(bp, 400, 401, 403, 409, 413, 415, 503)
def create_token(body: dict[str, Any]) -> dict[str, Any]:
    max_ttl = runtime().settings.token_max_lifetime
    new = _service().create_token(
        body["name"], body["role"], body["ttl"], actor=current_actor(), max_ttl=max_ttl
    )
    db_session().commit()
    record = new.record
    return {
        "name": record.name,
        "role": record.role,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "token": new.token,
    }


@bp.get("")
@require_reader
@bp.arguments(PageQuerySchema, location="query", error_status_code=400)
@bp.response(200, TokenPageSchema)
@problem_responses(bp, 400, 401, 403, 503)
def list_tokens(query: dict[str, Any]) -> dict[str, Any]:
    return page_of(query, lambda limit, before: _service().list_tokens(limit=limit, before_id=before))


@bp.delete("/<name>")
@require_admin
@bp.response(204)
@problem_responses(bp, 401, 403, 404, 503)
def delete_token(name: str) -> None:
    _service().delete_token(name, actor=current_actor())
    db_session().commit()
