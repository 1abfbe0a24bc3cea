"""Freezes take effect when they start: the leases they cover are revoked then, once per occurrence."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from app.clock import FrozenClock
from app.runtime import Runtime
from app.scheduler.jobs import enforce_freezes
from app.windows.models import Freeze
from tests.integration.scheduler.conftest import START
from tests.integration.scheduler.lease_seeding import end_event_counts, token_works
from tests.support.broker import Broker
from tests.support.openbao import OpenBaoServer


def last_enforced_start(rt: Runtime, name: str) -> datetime | None:
    with rt.sessions() as session:
        return session.scalar(select(Freeze.last_enforced_start).where(Freeze.name == name))


def test_a_freeze_revokes_the_leases_it_covers_when_an_occurrence_starts_once_per_occurrence(
    broker: Broker, rt: Runtime, clock: FrozenClock, vault: OpenBaoServer
) -> None:
    broker.kv_secret("staging-static")
    broker.policy("deploy-staging", secrets=["staging-static"])
    covered = broker.lease(
        "prod-vault-token", ttl="1h"
    )  # 09:45 until 10:45: granted before the freeze existed
    uncovered = broker.lease("staging-static", ttl="1h")
    clock.advance(timedelta(minutes=5))
    broker.create(
        "/v1/freezes",
        {
            "name": "hourly-freeze",
            "schedule": {"type": "cron", "cron": "0 * * * *", "duration": "10m"},
            "policies": ["deploy-prod"],
            "reason": "quiet hour",
        },
    )
    assert enforce_freezes(rt.sessions, rt.vault, clock) == 0  # 09:50: not started yet
    assert token_works(vault, covered["data"]["token"])

    clock.set(START.replace(hour=10, minute=0))
    assert enforce_freezes(rt.sessions, rt.vault, clock) == 1

    shown = broker.admin("GET", f"/v1/leases/{covered['id']}").get_json()
    assert (shown["status"], shown["end_reason"]) == ("revoked", "freeze")
    assert not token_works(vault, covered["data"]["token"])
    assert broker.admin("GET", f"/v1/leases/{uncovered['id']}").get_json()["status"] == "active"
    assert last_enforced_start(rt, "hourly-freeze") == START.replace(hour=10, minute=0)

    # Another worker, or the next tick, within the same occurrence: nothing more.
    clock.advance(timedelta(minutes=3))
    assert enforce_freezes(rt.sessions, rt.vault, clock) == 0
    assert end_event_counts(rt.sessions) == {covered["id"]: 1}

    # The next occurrence is enforced on its own.
    clock.set(START.replace(hour=11, minute=0, second=30))
    assert enforce_freezes(rt.sessions, rt.vault, clock) == 0
    assert last_enforced_start(rt, "hourly-freeze") == START.replace(hour=11, minute=0)
    assert broker.admin("GET", f"/v1/leases/{uncovered['id']}").get_json()["status"] == "active"


def test_a_freeze_naming_no_policy_covers_every_policy(
    broker: Broker, rt: Runtime, clock: FrozenClock, vault: OpenBaoServer
) -> None:
    broker.kv_secret("staging-static")
    broker.policy("deploy-staging", secrets=["staging-static"])
    leases = [broker.lease("prod-vault-token", ttl="1h"), broker.lease("staging-static", ttl="1h")]
    start = clock.now() + timedelta(minutes=2)
    broker.create(
        "/v1/freezes",
        {
            "name": "incident",
            "schedule": {
                "type": "once",
                "start": start.isoformat().replace("+00:00", "Z"),
                "end": (start + timedelta(hours=2)).isoformat().replace("+00:00", "Z"),
            },
        },
    )
    clock.advance(timedelta(minutes=1, seconds=59))
    assert enforce_freezes(rt.sessions, rt.vault, clock) == 0
    clock.advance(timedelta(seconds=1))
    assert enforce_freezes(rt.sessions, rt.vault, clock) == 2
    for lease in leases:
        shown = broker.admin("GET", f"/v1/leases/{lease['id']}").get_json()
        assert (shown["status"], shown["end_reason"]) == ("revoked", "freeze")
    assert not token_works(vault, leases[0]["data"]["token"])
    assert end_event_counts(rt.sessions) == {lease["id"]: 1 for lease in leases}
