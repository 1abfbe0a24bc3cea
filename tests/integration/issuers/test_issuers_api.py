"""Issuers over the API, and CI tokens at the front door: GitHub, GitLab, generic, forgeries, outages."""

from __future__ import annotations

from typing import Any

import pytest

from app.runtime import runtime_of
from tests.integration.conftest import make_app, rt
from tests.support.broker import Broker, bearer
from tests.support.oidc_issuer import OidcIssuer, forge_unsigned


def _issuer(url: str, **overrides: Any) -> dict[str, Any]:
    return {
        "name": "gitlab",
        "issuer": url,
        "flavor": "gitlab",
        "audiences": ["https://transom.example.com"],
        **overrides,
    }


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"flavor": "jenkins"}, "flavor"),
        ({"audiences": []}, "audiences"),
        ({"leeway_seconds": 301}, "leeway_seconds"),
        ({"flavor": "generic"}, "claim_map"),
        ({"flavor": "generic", "claim_map": {"colour": "x"}}, "claim_map"),
        ({"issuer": "not a url"}, "issuer"),
    ],
)
def test_invalid_issuers_are_400_naming_the_field(
    broker: Broker, overrides: dict[str, Any], field: str
) -> None:
    response = broker.admin("POST", "/v1/issuers", _issuer("https://gitlab.example.com", **overrides))
    assert response.status_code == 400, response.get_json()
    assert field in response.get_json()["errors"]


def test_https_is_required_unless_insecure_issuers_are_allowed(broker: Broker) -> None:
    strict = make_app(
        str(runtime_of(broker.app).settings.database_url),
        broker.vault,
        allow_insecure_issuers=False,
    )
    response = strict.test_client().post(
        "/v1/issuers", json=_issuer("http://127.0.0.1:9999"), headers=bearer(broker.admin_token)
    )
    rt(strict).engine.dispose()
    assert response.status_code == 400 and "issuer" in response.get_json()["errors"]
    # With the development switch, only loopback may be plain http.
    assert broker.admin("POST", "/v1/issuers", _issuer("http://ci.example.com")).status_code == 400


def test_issuer_crud_and_in_use(broker: Broker) -> None:
    assert broker.admin("POST", "/v1/issuers", _issuer(broker.issuer.url, name="dup")).status_code == 409
    created = broker.create("/v1/issuers", _issuer("https://gitlab.example.com"))
    assert created["leeway_seconds"] == 30 and created["jwks_uri"] is None
    replaced = broker.admin(
        "PUT", "/v1/issuers/gitlab", _issuer("https://gitlab.example.com", leeway_seconds=5)
    )
    assert replaced.status_code == 200 and replaced.get_json()["leeway_seconds"] == 5
    assert broker.admin("DELETE", "/v1/issuers/github").status_code == 409  # deploy-prod uses it
    assert broker.admin("DELETE", "/v1/issuers/gitlab").status_code == 204
    assert broker.admin("GET", "/v1/issuers/gitlab").status_code == 404


def test_gitlab_tokens_lease_with_their_own_claims(broker: Broker) -> None:
    with OidcIssuer() as gitlab:
        broker.create("/v1/issuers", _issuer(gitlab.url))
        broker.create(
            "/v1/policies",
            {
                "name": "gitlab-deploys",
                "issuer": "gitlab",
                "secrets": ["prod-db-static"],
                "repositories": ["acme/payments"],
                "branches": ["main"],
                "require_protected_ref": True,
                "runners": {"environments": ["self-hosted"], "ids": ["42"]},
                "windows": ["always"],
                "max_ttl": "1h",
            },
        )
        good = gitlab.mint(claims=gitlab.gitlab_claims(runner_environment="self-hosted", runner_id=42))
        lease = broker.lease("prod-db-static", token=good)
        assert lease["policy"] == "gitlab-deploys"
        shown = broker.admin("GET", f"/v1/leases/{lease['id']}").get_json()
        assert shown["identity"]["runner_id"] == "42" and shown["identity"]["ref_protected"] is True

        tag_named_main = gitlab.mint(
            claims=gitlab.gitlab_claims(
                ref="main", ref_type="tag", runner_environment="self-hosted", runner_id=42
            )
        )
        denied = broker.request_lease("prod-db-static", token=tag_named_main)
        assert denied.status_code == 403
        codes = {r["code"] for r in denied.get_json()["reasons"]}
        assert "tag_not_allowed" in codes and "branch_not_allowed" not in codes


@pytest.mark.parametrize(
    ("make_token", "code"),
    [
        (lambda b: forge_unsigned(b.issuer.github_claims()), "unsupported_algorithm"),
        (lambda b: b.issuer.mint({"aud": "https://elsewhere.example.com"}), "bad_audience"),
        (lambda b: b.issuer.mint({"iss": b.issuer.url + "/"}), "unknown_issuer"),
        (lambda b: b.issuer.mint(kid="not-a-key"), "unknown_key"),
        (lambda b: "not.a.jwt", "malformed_token"),
        (lambda b: b.issuer.mint({"exp": 1_000_000_000}), "token_expired"),
    ],
)
def test_forged_or_stale_tokens_get_401_with_the_reason(broker: Broker, make_token: Any, code: str) -> None:
    response = broker.request_lease("prod-vault-token", token=make_token(broker))
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/problem+json"
    assert [r["code"] for r in response.get_json()["reasons"]] == [code]
    assert broker.admin("GET", "/v1/leases").get_json()["items"] == []


def test_issuer_keys_unavailable_and_none_cached_is_503(broker: Broker) -> None:
    token = broker.ci_token()
    broker.issuer.fail_with(500)
    response = broker.request_lease("prod-vault-token", token=token)
    assert response.status_code == 503
    assert response.get_json()["reasons"][0]["code"] == "issuer_unavailable"
    broker.issuer.recover()


def test_cached_keys_keep_verifying_while_the_issuer_is_down(broker: Broker) -> None:
    assert broker.lease("prod-db-static")["status"] == "active"  # warms the key cache
    broker.issuer.fail_with(500)
    assert broker.request_lease("prod-db-static").status_code == 201
    broker.issuer.recover()
