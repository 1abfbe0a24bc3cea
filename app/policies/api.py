from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from app import crud
from app.policies.evaluation import Evaluation, evaluate_policy
from app.policies.models import Policy
from app.policies.schemas import (
    EvaluateRequestSchema,
    EvaluationSchema,
    PolicyPageSchema,
    PolicyRequestSchema,
    PolicySchema,
)
from app.policies.service import PolicyService
from app.request_context import current_actor, db_session, ledger, runtime
from app.schemas import PageQuerySchema

bp = Blueprint("policies", __name__, url_prefix="/v1/policies", description="Lease policies (admin)")


def _service() -> PolicyService:
    return PolicyService(db_session(), runtime().clock, ledger())


@crud.CREATED(bp, PolicySchema, body=PolicyRequestSchema)
def create_policy(body: dict[str, Any]) -> Policy:
    return crud.committed(_service().create_policy(body, actor=current_actor()))


@crud.LISTED(bp, PolicyPageSchema, query=PageQuerySchema)
def list_policies(query: dict[str, Any]) -> dict[str, Any]:
    return crud.paged(query, _service().list_policies)


@crud.FETCHED(bp, PolicySchema)
def get_policy(name: str) -> Policy:
    return _service().get_policy(name)


@crud.REPLACED(bp, PolicySchema, body=crud.replacing(PolicyRequestSchema))
def replace_policy(body: dict[str, Any], name: str) -> Policy:
    policy = _service().replace_policy(name, body, actor=current_actor())
    return crud.commit_then_reevaluate(policy, policies={name})


@crud.DELETED(bp)
def delete_policy(name: str) -> None:
    _service().delete_policy(name, actor=current_actor())
    crud.commit_then_reevaluate(None, policies={name})  # its leases end: no policy grants them now


@crud.EVALUATED(bp, EvaluationSchema, path="/<name>/evaluate", body=EvaluateRequestSchema)
def evaluate(body: dict[str, Any], name: str) -> Evaluation:
    session = db_session()
    rt = runtime()
    evaluation = evaluate_policy(
        session,
        rt.clock,
        rt.workload_verifier(session),
        _service().get_policy(name),
        token=body["token"],
        secret=body["secret"],
        at=body["at"],
        ttl=body["ttl"],
        actor=current_actor(),
        source_address=None if body["source_address"] is None else str(body["source_address"]),
    )
    return crud.committed(evaluation)  # the dry run is in the ledger
