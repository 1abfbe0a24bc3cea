"""Issue 18, finding 7, end to end: a leased Vault token ends at Vault with its window, whoever renews it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import hvac.exceptions
import pytest

from app.instants import format_instant
from tests.support.broker import Broker

pytestmark = pytest.mark.vault


def _window(name: str, start: datetime, end: datetime) -> dict[str, object]:
    schedule = {"type": "once", "start": format_instant(start), "end": format_instant(end)}
    return {"name": name, "timezone": "UTC", "schedule": schedule}


def test_a_60s_token_in_a_window_ending_in_2_minutes_cannot_renew_itself_past_it(broker: Broker) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    broker.create("/v1/windows", _window("closing", now - timedelta(hours=1), now + timedelta(minutes=2)))
    policy = broker.admin("GET", "/v1/policies/deploy-prod").get_json()
    body = {k: v for k, v in policy.items() if k not in ("created_at", "updated_at")}
    replaced = broker.admin("PUT", "/v1/policies/deploy-prod", {**body, "windows": ["closing"]})
    assert replaced.status_code == 200, replaced.get_json()

    lease = broker.lease("prod-vault-token", ttl="60s")

    assert lease["bounded_by"] == "requested"
    with broker.vault.client_for(lease["data"]["token"]) as job:
        info = job.auth.token.lookup_self()["data"]
        assert 110 <= info["explicit_max_ttl"] <= 120  # the window's end, not the policy's hour
        with pytest.raises(hvac.exceptions.Forbidden):
            job.auth.token.renew_self(increment="1h")
        assert job.auth.token.lookup_self()["data"]["ttl"] <= 60
