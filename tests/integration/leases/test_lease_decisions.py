"""Decisions at request time: every reason code, window/freeze/max_ttl bounds, and the dry run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.instants import format_instant, parse_instant
from tests.support.broker import Broker, bearer, policy_body
from tests.support.oidc_issuer import OidcIssuer


def _once(name: str, start: datetime, end: datetime) -> dict[str, Any]:
    return {
        "name": name,
        "timezone": "UTC",
        "schedule": {"type": "once", "start": format_instant(start), "end": format_instant(end)},
    }


def _codes(response: Any) -> set[str]:
    assert response.status_code == 403, response.get_json()
    return {r["code"] for r in response.get_json()["reasons"]}


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def test_lease_never_outlives_its_window(broker: Broker) -> None:
    now = _now()
    broker.create("/v1/windows", _once("closing-soon", now - timedelta(hours=1), now + timedelta(seconds=90)))
    broker.admin("PUT", "/v1/policies/deploy-prod", policy_body(windows=["closing-soon"]))
    lease = broker.lease("prod-vault-token", ttl="1h")
    assert lease["bounded_by"] == "window"
    assert lease["expires_at"] == format_instant(now + timedelta(seconds=90))
    with broker.vault.client_for(lease["data"]["token"]) as client:
        assert client.auth.token.lookup_self()["data"]["ttl"] <= 91


def test_lease_ends_before_the_next_freeze_and_is_capped_by_max_ttl(broker: Broker) -> None:
    now = _now()
    broker.create("/v1/freezes", {**_once("soon", now + timedelta(minutes=10), now + timedelta(hours=2))})
    frozen = broker.lease("prod-vault-token", ttl="1h")
    assert frozen["bounded_by"] == "freeze"
    assert frozen["expires_at"] == format_instant(now + timedelta(minutes=10))

    broker.admin("DELETE", "/v1/freezes/soon")
    broker.admin("PUT", "/v1/policies/deploy-prod", policy_body(max_ttl="10m", default_ttl="5m"))
    capped = broker.lease("prod-vault-token", ttl="1h")
    assert capped["bounded_by"] == "max_ttl" and capped["ttl"] in (599, 600)


def test_outside_window_names_the_next_opening(broker: Broker) -> None:
    now = _now()
    opens = now + timedelta(hours=3)
    broker.create("/v1/windows", _once("later", opens, opens + timedelta(hours=1)))
    broker.admin("PUT", "/v1/policies/deploy-prod", policy_body(windows=["later"]))
    response = broker.request_lease("prod-vault-token")
    assert _codes(response) == {"outside_window"}
    assert format_instant(opens) in response.get_json()["reasons"][0]["message"]


def test_a_freeze_that_begins_revokes_the_leases_it_covers(broker: Broker) -> None:
    lease = broker.lease("prod-vault-token")
    now = _now()
    created = broker.admin(
        "POST",
        "/v1/freezes",
        {**_once("incident", now - timedelta(minutes=1), now + timedelta(hours=1)), "reason": "incident 42"},
    )
    assert created.status_code == 201
    shown = broker.admin("GET", f"/v1/leases/{lease['id']}").get_json()
    assert shown["status"] == "revoked" and shown["end_reason"] == "freeze"
    refused = broker.request_lease("prod-vault-token")
    assert _codes(refused) == {"freeze_active"}
    assert "incident 42" in refused.get_json()["reasons"][0]["message"]


@pytest.mark.parametrize(
    ("policy_changes", "claims", "expected"),
    [
        # A repository no policy allows is an outsider: it learns nothing of the configuration.
        ({}, {"repo": "evil/payments"}, {"no_policy"}),
        ({}, {"ref": "refs/heads/feature/x"}, {"branch_not_allowed"}),
        ({}, {"ref": "refs/tags/v1.0"}, {"tag_not_allowed"}),
        ({"require_protected_ref": True}, {}, {"ref_not_protected"}),
        ({"environments": ["production"]}, {"environment": "staging"}, {"environment_not_allowed"}),
        ({"runners": {"environments": ["self-hosted"]}}, {}, {"runner_not_allowed"}),
        ({}, {"event": "pull_request_target"}, {"event_not_allowed"}),
        ({"events": ["workflow_dispatch"]}, {"event": "push"}, {"event_not_allowed"}),
        ({}, {"ref": "refs/heads/a..b"}, {"invalid_ref"}),
        ({}, {"event": "workflow_run"}, {"event_not_allowed"}),
        (
            {"environments": ["production"], "require_protected_ref": True},
            {"event": "issue_comment", "environment": "dev"},
            {"event_not_allowed", "environment_not_allowed", "ref_not_protected"},
        ),
    ],
)
def test_each_rule_denies_with_its_reason(
    broker: Broker, policy_changes: dict[str, Any], claims: dict[str, Any], expected: set[str]
) -> None:
    if policy_changes:
        assert (
            broker.admin("PUT", "/v1/policies/deploy-prod", policy_body(**policy_changes)).status_code == 200
        )
    assert _codes(broker.request_lease("prod-vault-token", broker.ci_token(**claims))) == expected


def test_tags_and_environments_grant_when_allowed(broker: Broker) -> None:
    broker.admin("PUT", "/v1/policies/deploy-prod", policy_body(tags=["v*"], environments=["production"]))
    lease = broker.lease(
        "prod-db-static", token=broker.ci_token(ref="refs/tags/v1.2", environment="production")
    )
    assert lease["status"] == "active"


def test_issuer_not_allowed_and_nopolicy_body(broker: Broker) -> None:
    with OidcIssuer(audience=broker.issuer.audience) as other:
        broker.create(
            "/v1/issuers",
            {"name": "other-ci", "issuer": other.url, "flavor": "github", "audiences": [other.audience]},
        )
        token = other.mint(claims=other.github_claims())
        # No policy names that issuer: an outsider, told nothing more.
        assert _codes(broker.request_lease("prod-vault-token", token)) == {"no_policy"}
        # A policy for it (for another secret) makes it an insider, and it is told why.
        broker.create(
            "/v1/policies", policy_body(name="other", issuer="other-ci", secrets=["prod-db-static"])
        )
        assert _codes(broker.request_lease("prod-vault-token", token)) == {"issuer_not_allowed"}
    broker.create("/v1/secrets", {"name": "orphan", "kind": "token", "policies": ["deploy-prod"]})
    assert _codes(broker.request_lease("orphan")) == {"no_policy"}
    assert _codes(broker.request_lease("ghost")) == {"unknown_secret"}


def test_max_active_caps_simultaneous_leases(broker: Broker) -> None:
    broker.admin("PUT", "/v1/policies/deploy-prod", policy_body(max_active=2))
    first = broker.lease("prod-db-static")
    broker.lease("prod-db-static")
    assert _codes(broker.request_lease("prod-db-static")) == {"max_active_reached"}
    broker.client.post(f"/v1/leases/{first['id']}/release", headers=bearer(broker.ci_token()))
    assert broker.request_lease("prod-db-static").status_code == 201


def test_denials_are_in_the_ledger_with_every_reason(broker: Broker) -> None:
    broker.request_lease("prod-vault-token", broker.ci_token(ref="refs/heads/dev", event="workflow_run"))
    with broker.app.app_context():
        from app.audit.models import AuditEvent
        from app.request_context import db_session

        events = [e for e in db_session().query(AuditEvent).all() if e.action == "lease.denied"]
    assert len(events) == 1
    assert {r["code"] for r in events[0].reasons} == {"branch_not_allowed", "event_not_allowed"}
    assert events[0].details["identity"]["ref"] == "refs/heads/dev"


def test_dry_run_evaluates_as_of_an_instant_without_using_the_token(broker: Broker) -> None:
    token = broker.ci_token()
    now = _now()
    allowed = broker.admin(
        "POST",
        "/v1/policies/deploy-prod/evaluate",
        {"token": token, "secret": "prod-vault-token", "ttl": "30m"},
    ).get_json()
    assert allowed["allowed"] is True and allowed["reasons"] == [] and allowed["bounded_by"] == "requested"
    assert parse_instant(allowed["expires_at"]) >= now + timedelta(minutes=30)

    later = format_instant(now + timedelta(hours=2))
    expired = broker.admin(
        "POST",
        "/v1/policies/deploy-prod/evaluate",
        {"token": token, "secret": "prod-vault-token", "at": later},
    ).get_json()
    assert expired["allowed"] is False
    assert [r["code"] for r in expired["reasons"]] == ["token_expired"]

    # Evaluation never uses up the token's jti: it still obtains a lease.
    assert broker.request_lease("prod-vault-token", token).status_code == 201
