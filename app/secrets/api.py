from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from app.auth import require_admin, require_reader
from app.http import current_actor, db_session, ledger, runtime
from app.schemas import PageQuerySchema, page_of, problem_responses
from app.secrets.models import Secret
from app.secrets.schemas import SecretPageSchema, SecretRequestSchema, SecretSchema
from app.secrets.service import SecretService

bp = Blueprint("secrets", __name__, url_prefix="/v1/secrets", description="Vault targets (admin)")


def _service() -> SecretService:
    return SecretService(db_session(), runtime().clock, ledger(), runtime().vault)


@bp.post("")
@require_admin
@bp.arguments(SecretRequestSchema, error_status_code=400)
@bp.response(201, SecretSchema)
@problem_responses(bp, 400, 401, 403, 409, 413, 415, 503)
def create_secret(body: dict[str, Any]) -> Secret:
    secret = _service().create_secret(body, actor=current_actor())
    db_session().commit()
    return secret


@bp.get("")
@require_reader
@bp.arguments(PageQuerySchema, location="query", error_status_code=400)
@bp.response(200, SecretPageSchema)
@problem_responses(bp, 400, 401, 403, 503)
def list_secrets(query: dict[str, Any]) -> dict[str, Any]:
    return page_of(query, lambda limit, before: _service().list_secrets(limit=limit, before_id=before))


@bp.get("/<name>")
@require_reader
@bp.response(200, SecretSchema)
@problem_responses(bp, 401, 403, 404, 503)
def get_secret(name: str) -> Secret:
    return _service().get_secret(name)


@bp.put("/<name>")
@require_admin
@bp.arguments(SecretRequestSchema(partial=("name",)), error_status_code=400)
@bp.response(200, SecretSchema)
@problem_responses(bp, 400, 401, 403, 404, 409, 413, 415, 503)
def replace_secret(body: dict[str, Any], name: str) -> Secret:
    secret = _service().replace_secret(name, body, actor=current_actor())
    db_session().commit()
    return secret


@bp.delete("/<name>")
@require_admin
@bp.response(204)
@problem_responses(bp, 401, 403, 404, 409, 503)
def delete_secret(name: str) -> None:
    _service().delete_secret(name, actor=current_actor())
    db_session().commit()
