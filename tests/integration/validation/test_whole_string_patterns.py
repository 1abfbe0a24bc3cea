"""Every pattern check matches the whole value: `$` alone lets a final newline through (issue 17)."""

from __future__ import annotations

import pytest

from tests.support.broker import Broker

WEEKDAYS = {"type": "weekly", "days": ["mon"], "start": "09:00", "end": "16:00"}


@pytest.mark.parametrize("name", ["deploys\n", "deploys\r\n", "\ndeploys", "deploys\n\n"])
def test_a_name_with_a_newline_is_400(broker: Broker, name: str) -> None:
    response = broker.admin("POST", "/v1/windows", {"name": name, "timezone": "UTC", "schedule": WEEKDAYS})
    assert response.status_code == 400, response.get_json()
    assert "name" in response.get_json()["errors"]
    assert broker.admin("GET", "/v1/windows").get_json()["items"] == []


def test_an_idempotency_key_with_a_final_newline_is_400(broker: Broker) -> None:
    response = broker.request_lease("prod-db-static", idempotency_key="deploy-42\n")
    assert response.status_code == 400, response.get_json()
    assert "idempotency_key" in response.get_json()["errors"]
    assert broker.request_lease("prod-db-static", idempotency_key="deploy-42").status_code == 201
