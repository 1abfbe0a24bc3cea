"""Expiry and revocation retries, job by job, with the clock in the test's hand and the real OpenBao."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from app.clock import FrozenClock
from app.leases import ending
from app.leases.models import LeaseStatus
from app.metrics import scheduler_metrics
from app.runtime import Runtime
from app.scheduler.jobs import (
    IN_FLIGHT_GRACE,
    expire_due_leases,
    next_due,
    refresh_lease_gauges,
    retry_revocations,
)
from app.scheduler.runner import IDLE_SLEEP, MAX_SLEEP, wait_seconds
from app.vault.port import SecretBackend, VaultHandle
from tests.integration.scheduler.lease_seeding import (
    end_event_counts,
    lease_events,
    load_lease,
    seed_leases,
    token_works,
)
from tests.support.broker import Broker
from tests.support.ledger import settle_and_verify
from tests.support.openbao import OpenBaoServer


def sample(name: str, **labels: str) -> float:
    scheduler_metrics()  # registered on first use
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_due_lease_is_expired_at_vault_and_a_later_one_is_left_alone(
    broker: Broker, rt: Runtime, clock: FrozenClock, vault: OpenBaoServer
) -> None:
    due = broker.lease("prod-vault-token", ttl="10m")
    later = broker.lease("prod-vault-token", ttl="30m")
    assert next_due(rt.sessions) == clock.now() + timedelta(minutes=10)
    lags = sample("transom_revocation_lag_seconds_count")

    clock.advance(timedelta(minutes=10) - timedelta(seconds=1))
    assert expire_due_leases(rt.sessions, rt.vault, clock).claimed == 0
    assert token_works(vault, due["data"]["token"])

    clock.advance(timedelta(seconds=1))  # exactly expires_at
    result = expire_due_leases(rt.sessions, rt.vault, clock)

    assert (result.claimed, result.ended, result.failed) == (1, 1, 0)
    shown = broker.admin("GET", f"/v1/leases/{due['id']}").get_json()
    assert (shown["status"], shown["end_reason"]) == ("expired", "expired")
    assert shown["ended_at"] == shown["expires_at"]
    assert not token_works(vault, due["data"]["token"])
    assert broker.admin("GET", f"/v1/leases/{later['id']}").get_json()["status"] == "active"
    assert token_works(vault, later["data"]["token"])
    assert [a for a, _ in lease_events(rt.sessions, due["id"])] == ["lease.granted", "lease.expired"]
    assert lease_events(rt.sessions, due["id"])[-1][1] == {"end_reason": "expired", "vault_confirmed": True}
    assert sample("transom_revocation_lag_seconds_count") == lags + 1
    assert next_due(rt.sessions) == clock.now() + timedelta(minutes=20)

    # Sweeping again, or retrying, finds nothing: one end event, ever.
    assert expire_due_leases(rt.sessions, rt.vault, clock).claimed == 0
    assert retry_revocations(rt.sessions, rt.vault, clock).claimed == 0
    assert end_event_counts(rt.sessions) == {due["id"]: 1}


def test_while_vault_hangs_leases_read_revoking_and_are_revoked_once_it_answers(
    broker: Broker, rt: Runtime, clock: FrozenClock, vault: OpenBaoServer
) -> None:
    leases = [broker.lease("prod-vault-token", ttl="10m") for _ in range(3)]
    ids = [lease["id"] for lease in leases]
    timeouts = sample("transom_revocations_failed_total", error_class="timeout")
    clock.advance(timedelta(minutes=10, seconds=1))

    vault.pause()  # the port accepts connections, nothing answers: each call times out after 1 s
    first = expire_due_leases(rt.sessions, rt.vault, clock)
    assert (first.claimed, first.ended, first.failed) == (3, 0, 3)
    for lease_id in ids:
        row = load_lease(rt.sessions, lease_id)
        assert (row.status, row.pending_status) == (LeaseStatus.REVOKING, LeaseStatus.EXPIRED)
        assert (row.revoke_attempts, row.last_error) == (1, "timeout")
        # retry_delay(1): two seconds with jitter, between one and two
        assert row.next_attempt_at is not None
        assert clock.now() + timedelta(seconds=1) <= row.next_attempt_at <= clock.now() + timedelta(seconds=2)
        assert broker.admin("GET", f"/v1/leases/{lease_id}").get_json()["status"] == "revoking"
    assert sample("transom_revocations_failed_total", error_class="timeout") == timeouts + 3
    refresh_lease_gauges(rt.sessions, clock)
    assert sample("transom_leases_overdue") == 3
    assert sample("transom_leases_active", policy="deploy-prod") == 0

    # Backing off: not retried before next_attempt_at; then retried, and failing again backs off further.
    assert retry_revocations(rt.sessions, rt.vault, clock).claimed == 0
    clock.advance(timedelta(seconds=2))
    second = retry_revocations(rt.sessions, rt.vault, clock)
    assert (second.claimed, second.failed) == (3, 3)
    assert {load_lease(rt.sessions, i).revoke_attempts for i in ids} == {2}
    assert all(
        (load_lease(rt.sessions, i).next_attempt_at or clock.now()) > clock.now() + timedelta(seconds=1)
        for i in ids
    )

    vault.resume()
    clock.advance(timedelta(seconds=4))
    third = retry_revocations(rt.sessions, rt.vault, clock)
    assert (third.claimed, third.ended, third.failed) == (3, 3, 0)
    for lease in leases:
        assert not token_works(vault, lease["data"]["token"])
        events = lease_events(rt.sessions, lease["id"])
        assert [a for a, _ in events] == [
            "lease.granted",
            "lease.revoke_failed",
            "lease.revoke_failed",
            "lease.expired",
        ]
        assert events[1][1]["error_class"] == "timeout" and events[1][1]["attempt"] == 1
        assert set(events[1][1]) == {"error_class", "attempt", "next_attempt_at"}
        assert events[-1][1]["attempts"] == 3
        assert load_lease(rt.sessions, lease["id"]).status == LeaseStatus.EXPIRED
    assert end_event_counts(rt.sessions) == dict.fromkeys(ids, 1)
    refresh_lease_gauges(rt.sessions, clock)
    assert sample("transom_leases_overdue") == 0

    # No Vault token reached the ledger.
    everything = json.dumps([lease_events(rt.sessions, i) for i in ids])
    assert not any(lease["data"]["token"] in everything for lease in leases)
    assert settle_and_verify(rt.sessions, rt.ledger_signer).ok


def test_when_vault_is_down_the_failure_is_recorded_and_retried_after_it_is_back(
    broker: Broker, rt: Runtime, clock: FrozenClock, vault: OpenBaoServer
) -> None:
    lease = broker.lease("prod-vault-token", ttl="10m")
    refused = sample("transom_revocations_failed_total", error_class="connection_error")
    clock.advance(timedelta(minutes=10))
    vault.stop()  # the `vault` fixture brings it back, with its baseline, for the next test

    assert expire_due_leases(rt.sessions, rt.vault, clock).failed == 1
    row = load_lease(rt.sessions, lease["id"])
    assert (row.status, row.last_error, row.revoke_attempts) == ("revoking", "connection_error", 1)
    assert [a for a, _ in lease_events(rt.sessions, lease["id"])][-1] == "lease.revoke_failed"
    assert sample("transom_revocations_failed_total", error_class="connection_error") == refused + 1

    vault.start()
    clock.advance(timedelta(seconds=2))
    assert retry_revocations(rt.sessions, rt.vault, clock).ended == 1
    assert load_lease(rt.sessions, lease["id"]).status == LeaseStatus.EXPIRED
    assert end_event_counts(rt.sessions) == {lease["id"]: 1}


class _DiesWhileRevoking:
    """The real Vault adapter inside a process that is killed while it revokes (a BaseException, like the
    interpreter going down): the claim is committed, nothing after it is."""

    def __init__(self, vault: SecretBackend) -> None:
        self._vault = vault

    def revoke(self, handle: VaultHandle) -> None:
        raise SystemExit("killed")

    def revoke_by_lease_id(self, lease_id: str) -> int:
        raise SystemExit("killed")


def test_a_batch_claimed_by_a_worker_that_died_is_taken_up_once_its_claim_runs_out(
    rt: Runtime, clock: FrozenClock, vault: OpenBaoServer
) -> None:
    now = clock.now()
    seeded = seed_leases(rt.sessions, rt.vault, [now - timedelta(seconds=5)] * 4, now=now, kind="token")
    dying = _DiesWhileRevoking(rt.vault)
    with pytest.raises(SystemExit):
        expire_due_leases(rt.sessions, dying, clock, threads=1, claim_timeout=timedelta(seconds=20))  # type: ignore[arg-type]
    assert {load_lease(rt.sessions, s.id).status for s in seeded} == {"revoking"}
    assert all(token_works(vault, s.token or "") for s in seeded)

    # Another worker leaves the claimed rows alone until the claim runs out, then ends each exactly once.
    clock.advance(timedelta(seconds=19))
    assert retry_revocations(rt.sessions, rt.vault, clock).claimed == 0
    clock.advance(timedelta(seconds=1))
    assert retry_revocations(rt.sessions, rt.vault, clock).ended == 4
    assert not any(token_works(vault, s.token or "") for s in seeded)
    assert end_event_counts(rt.sessions) == {s.id: 1 for s in seeded}
    assert {load_lease(rt.sessions, s.id).status for s in seeded} == {"expired"}


def test_overdue_leases_are_all_ended_in_batches(
    rt: Runtime, clock: FrozenClock, vault: OpenBaoServer
) -> None:
    now = clock.now()
    kv = seed_leases(rt.sessions, rt.vault, [now - timedelta(hours=1)] * 120, now=now - timedelta(hours=2))
    tokens = seed_leases(rt.sessions, rt.vault, [now - timedelta(minutes=1)] * 5, now=now, kind="token")
    result = expire_due_leases(rt.sessions, rt.vault, clock, batch_size=50)
    assert (result.claimed, result.ended, result.failed) == (125, 125, 0)
    assert end_event_counts(rt.sessions) == {s.id: 1 for s in kv + tokens}
    assert not any(token_works(vault, s.token or "") for s in tokens)
    assert next_due(rt.sessions) is None


@pytest.mark.parametrize(
    ("due_in", "worked", "expected"),
    [
        (None, False, MAX_SLEEP),  # nothing pending: look again in a second
        (0.25, False, 0.25),  # wake exactly when the next lease falls due
        (30.0, False, MAX_SLEEP),  # never sleep past a second: a new, earlier lease may arrive
        (-1.0, True, 0.0),  # a sweep that found work goes on at once
        (-1.0, False, IDLE_SLEEP),  # due but held by another worker: a moment, not a busy loop
    ],
)
def test_the_sweeper_sleeps_until_the_next_lease_falls_due(
    due_in: float | None, worked: bool, expected: float, clock: FrozenClock
) -> None:
    now = clock.now()
    due = None if due_in is None else now + timedelta(seconds=due_in)
    assert wait_seconds(due, now, worked=worked) == pytest.approx(expected)


def test_a_revocation_a_request_has_begun_is_left_to_it_and_taken_up_if_it_never_finishes(
    broker: Broker, rt: Runtime, clock: FrozenClock, vault: OpenBaoServer
) -> None:
    lease = broker.lease("prod-vault-token")
    # An admin's revoke request committed its intent and is calling Vault right now (or died doing so).
    with rt.sessions() as session:
        row = ending.lock_lease(session, lease["id"])
        assert row is not None
        ending.begin_end(row, final_status=LeaseStatus.REVOKED, end_reason="revoked", now=clock.now())
        session.commit()

    clock.advance(IN_FLIGHT_GRACE - timedelta(seconds=1))
    assert retry_revocations(rt.sessions, rt.vault, clock).claimed == 0
    assert token_works(vault, lease["data"]["token"])
    clock.advance(timedelta(seconds=1))
    assert retry_revocations(rt.sessions, rt.vault, clock).ended == 1
    assert not token_works(vault, lease["data"]["token"])
    assert [a for a, _ in lease_events(rt.sessions, lease["id"])] == ["lease.granted", "lease.revoked"]
