"""Issue 18, findings 5 and 8, through the API on SQLite and PostgreSQL: what an outsider learns from a
denial, the trusted-events default, repository ids against name takeover, protected environments."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.instants import format_instant
from tests.support.broker import Broker, policy_body
from tests.support.oidc_issuer import OMIT, OidcIssuer

OUTSIDER = "evil/outsider"
REPOSITORY_ID = "672013998"  # what the test issuer's GitHub tokens state for every repository


def _put(broker: Broker, **overrides: Any) -> dict[str, Any]:
    response = broker.admin(
        "PUT", f"/v1/policies/{overrides.get('name', 'deploy-prod')}", policy_body(**overrides)
    )
    assert response.status_code == 200, response.get_json()
    shown: dict[str, Any] = response.get_json()
    return shown


def _codes(response: Any) -> list[str]:
    assert response.status_code == 403, response.get_json()
    return [r["code"] for r in response.get_json()["reasons"]]


def _later_window(broker: Broker) -> str:
    """A window that opens in three hours: denials then name it and its next opening."""
    opens = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    broker.create(
        "/v1/windows",
        {
            "name": "tuesday-deploys",
            "timezone": "UTC",
            "schedule": {
                "type": "once",
                "start": format_instant(opens),
                "end": format_instant(opens + timedelta(hours=1)),
            },
        },
    )
    return format_instant(opens)


# --- finding 5: outsiders learn nothing ---------------------------------------------------------------------


def test_an_outsider_gets_the_same_bare_no_policy_for_an_existing_and_a_missing_secret(
    broker: Broker,
) -> None:
    opening = _later_window(broker)
    _put(broker, environments=["production"], windows=["tuesday-deploys"])

    existing = broker.request_lease("prod-vault-token", broker.ci_token(repo=OUTSIDER))
    missing = broker.request_lease("no-such-secret", broker.ci_token(repo=OUTSIDER))

    assert existing.status_code == missing.status_code == 403
    assert existing.get_json() == missing.get_json()  # nothing tells the two apart
    body = existing.get_json()
    assert [r["code"] for r in body["reasons"]] == ["no_policy"]
    assert "policy" not in body["reasons"][0]
    shown = json.dumps(body)
    configuration = ["prod-vault-token", "acme/payments", "deploy-prod", "production", "tuesday-deploys"]
    for value in [*configuration, opening, "github"]:
        assert value not in shown


def test_an_insider_keeps_every_reason(broker: Broker) -> None:
    opening = _later_window(broker)
    _put(broker, environments=["production"], windows=["tuesday-deploys"])

    denied = broker.request_lease("prod-vault-token", broker.ci_token(environment="staging"))
    assert _codes(denied) == ["environment_not_allowed", "outside_window"]
    assert opening in denied.get_json()["reasons"][1]["message"]
    assert all(r["policy"] == "deploy-prod" for r in denied.get_json()["reasons"])
    assert _codes(broker.request_lease("no-such-secret")) == ["unknown_secret"]


def test_a_policy_for_another_secret_makes_an_insider(broker: Broker) -> None:
    broker.create(
        "/v1/policies", policy_body(name="tools", secrets=["prod-db-static"], repositories=["acme/tools"])
    )
    token = broker.ci_token(repo="acme/tools")
    reasons = broker.request_lease("prod-vault-token", token).get_json()["reasons"]
    assert [(r["policy"], r["code"]) for r in reasons] == [("deploy-prod", "repository_not_allowed")]


def test_an_issuer_no_policy_names_is_an_outsider_too(broker: Broker) -> None:
    with OidcIssuer(audience=broker.issuer.audience) as other:
        broker.create(
            "/v1/issuers",
            {"name": "other-ci", "issuer": other.url, "flavor": "github", "audiences": [other.audience]},
        )
        token = other.mint(claims=other.github_claims())
        assert _codes(broker.request_lease("prod-vault-token", token)) == ["no_policy"]


def test_the_admin_dry_run_still_shows_an_outsider_every_reason(broker: Broker) -> None:
    token = broker.ci_token(repo=OUTSIDER)
    result = broker.admin(
        "POST", "/v1/policies/deploy-prod/evaluate", {"token": token, "secret": "prod-vault-token"}
    ).get_json()
    assert result["allowed"] is False
    assert [r["code"] for r in result["reasons"]] == ["repository_not_allowed"]
    assert "acme/payments" in result["reasons"][0]["message"]


def test_the_ledger_records_the_outsiders_identity(broker: Broker) -> None:
    broker.request_lease("prod-vault-token", broker.ci_token(repo=OUTSIDER))
    events = broker.admin("GET", "/v1/audit/events?action=lease.denied").get_json()["items"]
    assert events and events[0]["repository"] == OUTSIDER
    assert [r["code"] for r in events[0]["reasons"]] == ["no_policy"]


# --- finding 8: events are an allowlist by default ----------------------------------------------------------


@pytest.mark.parametrize("event", ["workflow_run", "issue_comment", "pull_request_review", "pull_request"])
def test_a_policy_without_events_refuses_untrusted_github_events(broker: Broker, event: str) -> None:
    assert _codes(broker.request_lease("prod-vault-token", broker.ci_token(event=event))) == [
        "event_not_allowed"
    ]


def test_a_listed_event_passes_and_trusted_ones_pass_by_default(broker: Broker) -> None:
    for event in ("push", "workflow_dispatch", "schedule", "release", "deployment", "merge_group"):
        assert broker.request_lease("prod-db-static", broker.ci_token(event=event)).status_code == 201
    _put(broker, events=["workflow_run"])
    assert broker.request_lease("prod-db-static", broker.ci_token(event="workflow_run")).status_code == 201
    assert _codes(broker.request_lease("prod-db-static", broker.ci_token(event="push"))) == [
        "event_not_allowed"
    ]


@pytest.fixture
def gitlab(broker: Broker) -> Iterator[OidcIssuer]:
    """A GitLab issuer named ``gitlab`` and a policy ``gitlab-deploys`` for acme/payments on it, the only
    policy that names prod-db-static."""
    _put(broker, secrets=["prod-vault-token"])
    with OidcIssuer(audience=broker.issuer.audience) as issuer:
        broker.create(
            "/v1/issuers",
            {"name": "gitlab", "issuer": issuer.url, "flavor": "gitlab", "audiences": [issuer.audience]},
        )
        broker.create(
            "/v1/policies", policy_body(name="gitlab-deploys", issuer="gitlab", secrets=["prod-db-static"])
        )
        yield issuer


def _gitlab_lease(
    broker: Broker, gitlab: OidcIssuer, overrides: dict[str, Any] | None = None, **claims: Any
) -> Any:
    token = gitlab.mint(overrides, claims=gitlab.gitlab_claims(**claims))
    return broker.request_lease("prod-db-static", token)


def test_gitlab_untrusted_sources_are_refused_by_default(broker: Broker, gitlab: OidcIssuer) -> None:
    for source in ("external_pull_request_event", "merge_request_event", "chat"):
        assert _codes(_gitlab_lease(broker, gitlab, pipeline_source=source)) == ["event_not_allowed"]
    for source in ("push", "web", "schedule", "api", "trigger", "pipeline", "parent_pipeline"):
        assert _gitlab_lease(broker, gitlab, pipeline_source=source).status_code == 201
    _put(
        broker,
        name="gitlab-deploys",
        issuer="gitlab",
        secrets=["prod-db-static"],
        events=["external_pull_request_event"],
    )
    assert _gitlab_lease(broker, gitlab, pipeline_source="external_pull_request_event").status_code == 201


# --- finding 8: protected environments ----------------------------------------------------------------------


def test_a_policy_can_require_a_protected_environment(broker: Broker, gitlab: OidcIssuer) -> None:
    shown = _put(
        broker, name="gitlab-deploys", issuer="gitlab", secrets=["prod-db-static"],
        environments=["production"], require_protected_environment=True,
    )  # fmt: skip
    assert shown["require_protected_environment"] is True

    assert _gitlab_lease(broker, gitlab, environment="production").status_code == 201  # states "true"
    unprotected = _gitlab_lease(broker, gitlab, {"environment_protected": "false"}, environment="production")
    assert _codes(unprotected) == ["environment_not_protected"]
    assert "'production' is not protected" in unprotected.get_json()["reasons"][0]["message"]
    unstated = _gitlab_lease(broker, gitlab, {"environment_protected": OMIT}, environment="production")
    assert _codes(unstated) == ["environment_not_protected"]  # unknown is not true

    # GitHub states no environment_protected: such a policy denies its tokens (an insider, so it is told).
    _put(broker, environments=["production"], require_protected_environment=True)
    github = broker.request_lease("prod-vault-token", broker.ci_token(environment="production"))
    assert _codes(github) == ["environment_not_protected"]


# --- finding 8: repository ids ------------------------------------------------------------------------------


def test_repository_ids_stop_a_repository_name_taken_over(broker: Broker) -> None:
    shown = _put(broker, repository_ids=[int(REPOSITORY_ID)], runners={"ids": [42, "43"]})
    assert shown["repository_ids"] == [REPOSITORY_ID] and shown["runners"]["ids"] == ["42", "43"]
    assert shown["require_protected_environment"] is False
    _put(broker, repository_ids=[REPOSITORY_ID])
    held = broker.lease("prod-vault-token")

    # acme/payments was deleted and someone recreated the name: same name, another id. Nothing else
    # allows that id, so the taker is an outsider and learns nothing.
    taken_over = broker.ci_token()
    _put(broker, repository_ids=["1000001"])
    assert _codes(broker.request_lease("prod-vault-token", taken_over)) == ["no_policy"]
    # Pinning other ids re-evaluated the lease of the old repository: it no longer matches.
    shown = broker.admin("GET", f"/v1/leases/{held['id']}").get_json()
    assert shown["status"] == "revoked" and shown["end_reason"] == "policy_changed"

    # An insider (another policy allows its name and any id) is told it is the id.
    broker.create("/v1/policies", policy_body(name="reader", secrets=["prod-db-static"]))
    reasons = broker.request_lease("prod-vault-token", broker.ci_token()).get_json()["reasons"]
    assert [(r["policy"], r["code"]) for r in reasons] == [("deploy-prod", "repository_not_allowed")]
    assert f"repository id '{REPOSITORY_ID}' is not one of: 1000001" in reasons[0]["message"]


def test_without_repository_ids_any_id_passes(broker: Broker) -> None:
    shown = broker.admin("GET", "/v1/policies/deploy-prod").get_json()
    assert shown["repository_ids"] is None
    assert broker.request_lease("prod-vault-token").status_code == 201


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("repository_ids", []),
        ("repository_ids", [True]),
        ("repository_ids", [1.5]),
        ("repository_ids", [-1]),
        ("repository_ids", [""]),
        ("repository_ids", "672013998"),
        ("require_protected_environment", "yes"),
        ("runners", {"ids": [False]}),
    ],
)
def test_bad_identity_rules_are_400_with_the_field(broker: Broker, field: str, value: Any) -> None:
    response = broker.admin("PUT", "/v1/policies/deploy-prod", policy_body(**{field: value}))
    assert response.status_code == 400, response.get_json()
    assert field in response.get_json()["errors"]
