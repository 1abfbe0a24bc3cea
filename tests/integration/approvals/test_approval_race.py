"""PostgreSQL race: many people approve one request at once, and the workload claims it from many jobs at
once — exactly ``required`` approvals recorded, one ``approved`` transition, one lease."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select

from app.approvals.models import ApprovalVote
from tests.integration.approvals.conftest import People, ask, require_approval
from tests.integration.conftest import rt
from tests.support.broker import Broker, bearer

pytestmark = pytest.mark.postgres
REQUIRED = 3
PEOPLE = 20


@pytest.fixture
def database_url(postgres_url: str) -> str:
    return postgres_url


def test_twenty_parallel_approvals_record_required_and_one_transition(broker: Broker, people: People) -> None:
    require_approval(broker, approval={"required": REQUIRED})
    names = [f"approver-{n}" for n in range(PEOPLE)]
    for name in names:
        people.token(name)
    token = broker.ci_token()
    request = ask(broker, token=token)

    def approve(name: str) -> int:
        client = broker.app.test_client()
        response = client.post(
            f"/v1/approvals/{request['id']}/approve", json={}, headers=bearer(people.tokens[name])
        )
        return response.status_code

    with ThreadPoolExecutor(PEOPLE) as pool:
        statuses = list(pool.map(approve, names))
    assert statuses.count(200) == REQUIRED and statuses.count(409) == PEOPLE - REQUIRED

    with rt(broker.app).sessions() as session:
        recorded = session.scalar(
            select(func.count()).select_from(ApprovalVote).where(ApprovalVote.request_id == request["id"])
        )
    assert recorded == REQUIRED
    events: list[dict[str, Any]] = broker.admin(
        "GET", "/v1/audit/events?action=approval.approved"
    ).get_json()["items"]
    assert len(events) == REQUIRED
    assert [e["details"]["status"] for e in events].count("approved") == 1

    def claim(_: int) -> int:
        client = broker.app.test_client()
        response = client.post(
            "/v1/leases",
            json={"secret": "prod-vault-token", "approval": request["id"]},
            headers=bearer(broker.ci_token()),
        )
        return response.status_code

    with ThreadPoolExecutor(8) as pool:
        claims = list(pool.map(claim, range(8)))
    assert claims.count(201) == 1 and claims.count(409) == 7
    leases = broker.admin("GET", "/v1/leases").get_json()["items"]
    assert len(leases) == 1 and leases[0]["status"] == "active"
