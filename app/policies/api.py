from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from app.auth import require_admin, require_reader
from app.http import current_actor, db_session, ledger, runtime
from app.leases.http import reevaluate_after_change
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
from app.schemas import PageQuerySchema, page_of, problem_responses

bp = Blueprint("policies", __name__, url_prefix="/v1/policies", description="Lease policies (admin)")


def _service() -> PolicyService:
    return PolicyService(db_session(), runtime().clock, ledger())


@bp.post("")
@require_admin
@bp.arguments(PolicyRequestSchema, error_status_code=400)
@bp.response(201, PolicySchema)
@problem_responses(bp, 400, 401, 403, 409, 413, 415, 503)
def create_policy(body: dict[str, Any]) -> Policy:
    policy = _service().create_policy(body, actor=current_actor())
    db_session().commit()
    return policy


@bp.get("")
@require_reader
@bp.arguments(PageQuerySchema, location="query", error_status_code=400)
@bp.response(200, PolicyPageSchema)
@problem_responses(bp, 400, 401, 403, 503)
def list_policies(query: dict[str, Any]) -> dict[str, Any]:
    return page_of(query, lambda limit, before: _service().list_policies(limit=limit, before_id=before))


@bp.get("/<name>")
@require_reader
@bp.response(200, PolicySchema)
@problem_responses(bp, 401, 403, 404, 503)
def get_policy(name: str) -> Policy:
    return _service().get_policy(name)


@bp.put("/<name>")
@require_admin
@bp.arguments(PolicyRequestSchema(partial=("name",)), error_status_code=400)
@bp.response(200, PolicySchema)
@problem_responses(bp, 400, 401, 403, 404, 409, 413, 415, 503)
def replace_policy(body: dict[str, Any], name: str) -> Policy:
    policy = _service().replace_policy(name, body, actor=current_actor())
    db_session().commit()
    reevaluate_after_change(policies={name})
    return policy


@bp.delete("/<name>")
@require_admin
@bp.response(204)
@problem_responses(bp, 401, 403, 404, 409, 503)
def delete_policy(name: str) -> None:
    _service().delete_policy(name, actor=current_actor())
    db_session().commit()
    reevaluate_after_change(policies={name})


@bp.post("/<name>/evaluate")
@require_admin
@bp.arguments(EvaluateRequestSchema, error_status_code=400)
@bp.response(200, EvaluationSchema)
@problem_responses(bp, 400, 401, 403, 404, 413, 415, 503)
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
    )
    session.commit()
    return evaluation
