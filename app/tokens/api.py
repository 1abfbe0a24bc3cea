from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from app import crud
from app.request_context import current_actor, db_session, ledger, runtime
from app.schemas import PageQuerySchema
from app.tokens.schemas import NewTokenSchema, TokenPageSchema, TokenRequestSchema
from app.tokens.service import TokenService

bp = Blueprint("tokens", __name__, url_prefix="/v1/tokens", description="Broker API tokens (admin)")


def _service() -> TokenService:
    return TokenService(db_session(), runtime().clock, ledger())


@crud.CREATED(bp, NewTokenSchema, body=TokenRequestSchema)
def create_token(body: dict[str, Any]) -> dict[str, Any]:
    max_ttl = runtime().settings.token_max_lifetime
    new = _service().create_token(
        body["name"],
        body["role"],
        body["ttl"],
        actor=current_actor(),
        max_ttl=max_ttl,
        ci_login=body["ci_login"],
    )
    record = crud.committed(new).record
    return {
        "name": record.name,
        "role": record.role,
        "ci_login": record.ci_login,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "token": new.token,
    }


@crud.LISTED(bp, TokenPageSchema, query=PageQuerySchema)
def list_tokens(query: dict[str, Any]) -> dict[str, Any]:
    return crud.paged(query, _service().list_tokens)


@crud.DELETED.without(409)(bp)  # a token is named by nothing
def delete_token(name: str) -> None:
    _service().delete_token(name, actor=current_actor())
    db_session().commit()
