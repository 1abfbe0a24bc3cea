"""Recovery and housekeeping: leases a crashed broker left issuing, replay records, signing keys."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import REGISTRY
from sqlalchemy import select

from app.clock import FrozenClock
from app.leases.models import LeaseStatus, SeenToken
from app.runtime import Runtime
from app.scheduler.jobs import ISSUING_NOTE, purge_seen_tokens, recover_stuck_issuing, refresh_jwks
from tests.integration.scheduler.lease_seeding import (
    end_event_counts,
    lease_events,
    load_lease,
    seed_leases,
    token_works,
)
from tests.support.broker import Broker
from tests.support.openbao import OpenBaoServer


def test_a_lease_left_issuing_past_the_grace_period_ends_failed_and_its_token_is_revoked(
    rt: Runtime, clock: FrozenClock, vault: OpenBaoServer
) -> None:
    now = clock.now()
    expiry = [now + timedelta(minutes=15)]
    # A broker died after Vault issued the token and before it stored the accessor and activated the lease.
    stuck = seed_leases(
        rt.sessions,
        rt.vault,
        expiry,
        now=now - timedelta(seconds=61),
        kind="token",
        status=LeaseStatus.ISSUING,
        store_accessor=False,
    )[0]
    stuck_kv = seed_leases(
        rt.sessions, rt.vault, expiry, now=now - timedelta(minutes=5), status=LeaseStatus.ISSUING
    )[0]
    in_flight = seed_leases(
        rt.sessions,
        rt.vault,
        expiry,
        now=now - timedelta(seconds=10),
        kind="token",
        status=LeaseStatus.ISSUING,
    )[0]
    assert token_works(vault, stuck.token or "")

    result = recover_stuck_issuing(rt.sessions, rt.vault, clock)

    assert (result.claimed, result.ended, result.failed) == (2, 2, 0)
    assert not token_works(vault, stuck.token or "")
    for lease_id in (stuck.id, stuck_kv.id):
        lease = load_lease(rt.sessions, lease_id)
        assert (lease.status, lease.end_reason) == (LeaseStatus.FAILED, "issue_failed")
        [(action, details)] = lease_events(rt.sessions, lease_id)
        assert action == "lease.issue_failed"
        assert details == {"end_reason": "issue_failed", "vault_confirmed": True, "note": ISSUING_NOTE}
    # Still within the grace period: a request may be waiting for Vault's answer right now.
    assert load_lease(rt.sessions, in_flight.id).status == LeaseStatus.ISSUING
    assert token_works(vault, in_flight.token or "")
    assert recover_stuck_issuing(rt.sessions, rt.vault, clock).claimed == 0
    assert end_event_counts(rt.sessions) == {stuck.id: 1, stuck_kv.id: 1}
    rt.vault.revoke_by_lease_id(in_flight.id)


def test_replay_records_are_purged_once_no_token_they_name_can_be_accepted(
    broker: Broker, rt: Runtime, clock: FrozenClock
) -> None:
    broker.lease("prod-db-static")  # the CI token lives 5 minutes; issuers' leeway is at most 300 s

    def seen() -> int:
        with rt.sessions() as session:
            return len(session.scalars(select(SeenToken)).all())

    assert seen() == 1
    clock.advance(timedelta(minutes=5) + timedelta(seconds=299))
    assert purge_seen_tokens(rt.sessions, clock) == 0
    assert seen() == 1
    clock.advance(timedelta(seconds=2))
    assert purge_seen_tokens(rt.sessions, clock) == 1
    assert seen() == 0


def test_signing_keys_are_refreshed_ahead_of_expiry(broker: Broker, rt: Runtime, clock: FrozenClock) -> None:
    refresh_jwks(rt.sessions, rt.jwks)  # fetched now, unless the lease request just did
    broker.issuer.reset_counts()
    assert refresh_jwks(rt.sessions, rt.jwks) == 0
    assert broker.issuer.count("/jwks") == 0

    # The copy is fresh for 600 s; the refresh comes in the last fifth, before any request finds it stale.
    clock.advance(timedelta(seconds=481))
    assert refresh_jwks(rt.sessions, rt.jwks) == 1
    assert broker.issuer.count("/jwks") == 1
    assert refresh_jwks(rt.sessions, rt.jwks) == 0


def test_an_issuer_that_is_down_is_logged_and_refreshed_once_it_is_back(
    broker: Broker, rt: Runtime, clock: FrozenClock
) -> None:
    refresh_jwks(rt.sessions, rt.jwks)
    broker.issuer.fail_with(503)
    clock.advance(timedelta(seconds=481))
    assert refresh_jwks(rt.sessions, rt.jwks) == 0  # logged, not raised
    assert _jwks_failing("github") == 1  # what the alert TransomJwksRefreshFailing watches
    broker.issuer.recover()
    clock.advance(timedelta(seconds=31))
    assert refresh_jwks(rt.sessions, rt.jwks) == 1
    assert _jwks_failing("github") == 0


def _jwks_failing(issuer: str) -> float | None:
    return REGISTRY.get_sample_value("transom_jwks_refresh_failing", {"issuer": issuer})
