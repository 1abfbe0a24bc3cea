from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from app import crud
from app.issuers.models import Issuer
from app.issuers.schemas import IssuerPageSchema, IssuerRequestSchema, IssuerSchema
from app.issuers.service import IssuerService, policies_using_issuer
from app.request_context import current_actor, db_session, ledger, runtime
from app.schemas import PageQuerySchema

bp = Blueprint("issuers", __name__, url_prefix="/v1/issuers", description="OIDC issuers (admin)")


def _service() -> IssuerService:
    rt = runtime()
    return IssuerService(db_session(), rt.clock, ledger(), allow_insecure=rt.settings.allow_insecure_issuers)


@crud.CREATED(bp, IssuerSchema, body=IssuerRequestSchema)
def create_issuer(body: dict[str, Any]) -> Issuer:
    return crud.committed(_service().create_issuer(body, actor=current_actor()))


@crud.LISTED(bp, IssuerPageSchema, query=PageQuerySchema)
def list_issuers(query: dict[str, Any]) -> dict[str, Any]:
    return crud.paged(query, _service().list_issuers)


@crud.FETCHED(bp, IssuerSchema)
def get_issuer(name: str) -> Issuer:
    return _service().get_issuer(name)


@crud.REPLACED(bp, IssuerSchema, body=crud.replacing(IssuerRequestSchema))
def replace_issuer(body: dict[str, Any], name: str) -> Issuer:
    issuer = _service().replace_issuer(name, body, actor=current_actor())
    return crud.commit_then_reevaluate(issuer, policies=policies_using_issuer(db_session(), name))


@crud.DELETED(bp)
def delete_issuer(name: str) -> None:
    _service().delete_issuer(name, actor=current_actor())
    db_session().commit()
