from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from app import crud
from app.request_context import current_actor, db_session, ledger, runtime
from app.schemas import PageQuerySchema
from app.secrets.models import Secret
from app.secrets.schemas import SecretPageSchema, SecretRequestSchema, SecretSchema
from app.secrets.service import SecretService

bp = Blueprint("secrets", __name__, url_prefix="/v1/secrets", description="Vault targets (admin)")


def _service() -> SecretService:
    return SecretService(db_session(), runtime().clock, ledger(), runtime().vault)


@crud.CREATED(bp, SecretSchema, body=SecretRequestSchema)
def create_secret(body: dict[str, Any]) -> Secret:
    return crud.committed(_service().create_secret(body, actor=current_actor()))


@crud.LISTED(bp, SecretPageSchema, query=PageQuerySchema)
def list_secrets(query: dict[str, Any]) -> dict[str, Any]:
    return crud.paged(query, _service().list_secrets)


@crud.FETCHED(bp, SecretSchema)
def get_secret(name: str) -> Secret:
    return _service().get_secret(name)


@crud.REPLACED(bp, SecretSchema, body=crud.replacing(SecretRequestSchema))
def replace_secret(body: dict[str, Any], name: str) -> Secret:
    return crud.committed(_service().replace_secret(name, body, actor=current_actor()))


@crud.DELETED(bp)
def delete_secret(name: str) -> None:
    _service().delete_secret(name, actor=current_actor())
    db_session().commit()
