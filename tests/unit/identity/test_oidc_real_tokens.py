"""Real-shaped GitHub, GitLab and generic tokens, signed and served by the loopback issuer, verify and map."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from app.clock import FrozenClock
from app.decision.reasons import BAD_SIGNATURE, TOKEN_EXPIRED, TOKEN_NOT_YET_VALID, UNKNOWN_KEY
from app.identity.claims import ref_problem
from app.identity.errors import TokenRejected
from app.identity.issuer_config import IssuerConfig
from app.identity.oidc import TokenVerifier
from app.identity.workload import WorkloadIdentity
from tests.support.oidc_issuer import OMIT, IssuerKey, OidcIssuer, generate_key

ConfigFactory = Callable[..., IssuerConfig]


@pytest.fixture(scope="module")
def gitlab_keys() -> list[IssuerKey]:
    return [generate_key("RS256"), generate_key("ES256")]  # its own: no key shared with "github"


@pytest.fixture
def gitlab(clock: FrozenClock, gitlab_keys: list[IssuerKey]) -> Iterator[OidcIssuer]:
    with OidcIssuer(clock=clock, keys=list(gitlab_keys)) as running:
        yield running


@pytest.fixture
def gitlab_registered(
    gitlab: OidcIssuer, registry: dict[str, IssuerConfig], config_for: ConfigFactory
) -> OidcIssuer:
    registry[gitlab.url] = config_for(gitlab, name="gitlab", flavor="gitlab")
    return gitlab


# ---------------------------------------------------------------------------------------------- GitHub


def test_github_push_to_main(verifier: TokenVerifier, issuer: OidcIssuer, clock: FrozenClock) -> None:
    claims = issuer.github_claims(run_id="9001", run_attempt="2", sha="a" * 40)
    verified = verifier.verify(issuer.mint(claims=claims))
    assert verified.identity == WorkloadIdentity(
        issuer="github",
        subject="repo:acme/payments:ref:refs/heads/main",
        repository="acme/payments",
        repository_id="672013998",
        ref="refs/heads/main",
        ref_type="branch",
        branch="main",
        tag=None,
        ref_protected=None,  # GitHub did not say: unknown, never true
        environment=None,
        runner_environment="github-hosted",
        runner_id=None,
        pipeline_id="9001",
        run_attempt="2",
        job_id=None,
        actor="octocat",
        event="push",
        sha="a" * 40,
        workflow="acme/payments/.github/workflows/deploy.yml@refs/heads/main",
    )
    assert verified.issued_at == clock.now()
    assert verified.expires_at == clock.now() + timedelta(minutes=5)
    expected = hashlib.sha256(f"{issuer.url}\x00{claims['jti']}".encode()).hexdigest()
    assert verified.replay_key == expected


def test_github_workflow_dispatch_on_a_release_branch(verifier: TokenVerifier, issuer: OidcIssuer) -> None:
    claims = issuer.github_claims(ref="refs/heads/release/2.4", event="workflow_dispatch", actor="alice")
    identity = verifier.verify(issuer.mint(claims=claims)).identity
    assert (identity.branch, identity.ref_type, identity.event, identity.actor) == (
        "release/2.4",
        "branch",
        "workflow_dispatch",
        "alice",
    )


def test_github_environment_job_with_protected_ref(verifier: TokenVerifier, issuer: OidcIssuer) -> None:
    claims = issuer.github_claims(environment="production", ref_protected=True)
    identity = verifier.verify(issuer.mint(claims=claims, alg="ES256")).identity
    assert identity.environment == "production"
    assert identity.subject == "repo:acme/payments:environment:production"
    assert identity.ref_protected is True
    assert identity.branch == "main"


def test_github_tag_push(verifier: TokenVerifier, issuer: OidcIssuer) -> None:
    identity = verifier.verify(issuer.mint(claims=issuer.github_claims(ref="refs/tags/v1.2.3"))).identity
    assert (identity.ref, identity.ref_type, identity.tag, identity.branch) == (
        "refs/tags/v1.2.3",
        "tag",
        "v1.2.3",
        None,
    )


def test_github_pull_request_ref_is_neither_branch_nor_tag(
    verifier: TokenVerifier, issuer: OidcIssuer
) -> None:
    claims = issuer.github_claims(ref="refs/pull/42/merge", event="pull_request")
    identity = verifier.verify(issuer.mint(claims=claims)).identity
    assert (identity.ref, identity.ref_type, identity.branch, identity.tag) == (
        "refs/pull/42/merge",
        None,
        None,
        None,
    )
    assert identity.event == "pull_request"


def test_github_self_hosted_runner(verifier: TokenVerifier, issuer: OidcIssuer) -> None:
    claims = issuer.github_claims(runner_environment="self-hosted")
    assert verifier.verify(issuer.mint(claims=claims)).identity.runner_environment == "self-hosted"


# ---------------------------------------------------------------------------------------------- GitLab


def test_gitlab_protected_branch(verifier: TokenVerifier, gitlab_registered: OidcIssuer) -> None:
    claims = gitlab_registered.gitlab_claims(pipeline_id="555", job_id="777", sha="b" * 40)
    identity = verifier.verify(gitlab_registered.mint(claims=claims)).identity
    assert identity == WorkloadIdentity(
        issuer="gitlab",
        subject="project_path:acme/payments:ref_type:branch:ref:main",
        repository="acme/payments",
        repository_id="20",
        ref="refs/heads/main",
        ref_type="branch",
        branch="main",
        tag=None,
        ref_protected=True,
        environment=None,
        runner_environment="gitlab-hosted",
        runner_id="12270831",  # an integer in the token
        pipeline_id="555",
        run_attempt=None,
        job_id="777",
        actor="alice",
        event="push",
        sha="b" * 40,
        workflow="gitlab.com/acme/payments//.gitlab-ci.yml@refs/heads/main",
    )


def test_gitlab_protected_environment_and_workflow(
    verifier: TokenVerifier, gitlab_registered: OidcIssuer
) -> None:
    claims = gitlab_registered.gitlab_claims(environment="production")
    claims["environment_protected"] = "true"
    identity = verifier.verify(gitlab_registered.mint(claims=claims)).identity
    assert (identity.environment, identity.environment_protected) == ("production", True)
    claims = gitlab_registered.gitlab_claims(environment="review")
    claims["environment_protected"] = "false"
    assert verifier.verify(gitlab_registered.mint(claims=claims)).identity.environment_protected is False


def test_gitlab_unprotected_tag(verifier: TokenVerifier, gitlab_registered: OidcIssuer) -> None:
    claims = gitlab_registered.gitlab_claims(ref="v3.0.0", ref_type="tag", protected=False)
    identity = verifier.verify(gitlab_registered.mint(claims=claims)).identity
    assert (identity.ref, identity.tag, identity.branch, identity.ref_protected) == (
        "refs/tags/v3.0.0",
        "v3.0.0",
        None,
        False,
    )


def test_gitlab_self_hosted_runner_in_an_environment(
    verifier: TokenVerifier, gitlab_registered: OidcIssuer
) -> None:
    claims = gitlab_registered.gitlab_claims(
        runner_environment="self-hosted", runner_id=42, environment="production", pipeline_source="web"
    )
    identity = verifier.verify(gitlab_registered.mint(claims=claims, alg="ES256")).identity
    assert (identity.runner_environment, identity.runner_id, identity.environment, identity.event) == (
        "self-hosted",
        "42",
        "production",
        "web",
    )


@pytest.mark.parametrize("include_ref_path", [True, False])
def test_gitlab_tag_named_main_is_never_the_branch_main(
    verifier: TokenVerifier, gitlab_registered: OidcIssuer, include_ref_path: bool
) -> None:
    claims = gitlab_registered.gitlab_claims(ref="main", ref_type="tag", include_ref_path=include_ref_path)
    identity = verifier.verify(gitlab_registered.mint(claims=claims)).identity
    assert (identity.ref, identity.ref_type, identity.tag, identity.branch) == (
        "refs/tags/main",
        "tag",
        "main",
        None,
    )


def test_both_issuers_side_by_side(
    verifier: TokenVerifier, issuer: OidcIssuer, gitlab_registered: OidcIssuer
) -> None:
    assert verifier.verify(issuer.mint()).identity.issuer == "github"
    assert (
        verifier.verify(gitlab_registered.mint(claims=gitlab_registered.gitlab_claims())).identity.issuer
        == "gitlab"
    )
    # A token signed by GitLab's key but claiming GitHub's issuer URL: GitHub publishes no such key.
    with pytest.raises(TokenRejected) as caught:
        verifier.verify(gitlab_registered.mint({"iss": issuer.url}))
    assert caught.value.code == UNKNOWN_KEY
    # ...and under a GitHub kid, GitLab's signature does not verify.
    with pytest.raises(TokenRejected) as caught:
        verifier.verify(
            gitlab_registered.mint(
                {"iss": issuer.url}, kid=issuer.current_key().kid, signing_key=gitlab_registered.current_key()
            )
        )
    assert caught.value.code == BAD_SIGNATURE


# --------------------------------------------------------------------------------------------- generic


def test_generic_issuer_with_a_nested_claim_map(
    verifier: TokenVerifier, issuer: OidcIssuer, registry: dict[str, IssuerConfig], config_for: ConfigFactory
) -> None:
    registry[issuer.url] = config_for(
        issuer,
        name="buildkite",
        flavor="generic",
        claim_map={
            "repository": "ctx.repo.slug",
            "ref": "ctx.git.ref",
            "ref_protected": "ctx.git.protected",
            "pipeline_id": "ctx.build.number",
            "job_id": "ctx.job",
            "runner_id": "agent.id",
            "runner_environment": "agent.kind",
            "event": "source",
            "actor": "https://example.com/claims.user",  # a claim whose name has dots
        },
    )
    claims = {
        "iss": issuer.url,
        "aud": issuer.audience,
        "sub": "organization:acme:pipeline:deploy",
        "exp": int(issuer.now().timestamp()) + 300,
        "iat": int(issuer.now().timestamp()),
        "jti": "bk-1",
        "ctx": {"repo": {"slug": "acme/payments"}, "git": {"ref": "refs/heads/main", "protected": True}},
        "ctx.build": "decoy",
        "ctx.job": 31337,
        "agent": {"id": 9, "kind": "self-hosted"},
        "source": "webhook",
        "https://example.com/claims.user": "bob",
    }
    identity = verifier.verify(issuer.mint(claims=claims)).identity
    assert identity.issuer == "buildkite"
    assert identity.subject == "organization:acme:pipeline:deploy"
    assert (identity.repository, identity.ref, identity.branch, identity.ref_protected) == (
        "acme/payments",
        "refs/heads/main",
        "main",
        True,
    )
    assert identity.pipeline_id is None  # ctx.build is a string, not an object with "number"
    assert (identity.job_id, identity.runner_id, identity.runner_environment) == ("31337", "9", "self-hosted")
    assert (identity.event, identity.actor) == ("webhook", "bob")
    assert identity.environment is None  # not in the map: unknown


# ------------------------------------------------------------------------------------------ refs, time


@pytest.mark.parametrize(
    "ref",
    [
        "refs/heads/a..b",
        "refs/heads//main",
        "refs/heads/ma\x00in",
        "refs/heads/\x1b[31m",
        "refs/heads/" + "x" * 250,
    ],
)
def test_bad_refs_verify_but_carry_a_ref_problem(
    verifier: TokenVerifier, issuer: OidcIssuer, ref: str
) -> None:
    identity = verifier.verify(issuer.mint(claims=issuer.github_claims(ref=ref))).identity
    assert identity.ref == ref
    assert ref_problem(identity) is not None


def test_a_good_ref_has_no_problem(verifier: TokenVerifier, issuer: OidcIssuer) -> None:
    assert ref_problem(verifier.verify(issuer.mint()).identity) is None


def test_no_jti_replay_key_is_the_hash_of_the_signing_input(
    verifier: TokenVerifier, issuer: OidcIssuer
) -> None:
    token = issuer.mint({"jti": OMIT})
    signing_input = token.rpartition(".")[0]
    assert verifier.verify(token).replay_key == hashlib.sha256(signing_input.encode()).hexdigest()


def test_same_jti_same_replay_key_across_tokens(verifier: TokenVerifier, issuer: OidcIssuer) -> None:
    first = verifier.verify(issuer.mint({"jti": "abc"}))
    second = verifier.verify(issuer.mint({"jti": "abc", "run_id": "other"}))
    assert first.replay_key == second.replay_key
    assert verifier.verify(issuer.mint({"jti": "abd"})).replay_key != first.replay_key


def test_dry_run_checks_time_claims_as_of_at(
    verifier: TokenVerifier, issuer: OidcIssuer, clock: FrozenClock
) -> None:
    token = issuer.mint()  # valid now .. now+5min (+30 s leeway)
    later = clock.now() + timedelta(hours=1)
    earlier = clock.now() - timedelta(hours=1)
    with pytest.raises(TokenRejected) as expired:
        verifier.verify(token, at=later)
    assert expired.value.code == TOKEN_EXPIRED
    with pytest.raises(TokenRejected) as early:
        verifier.verify(token, at=earlier)
    assert early.value.code == TOKEN_NOT_YET_VALID
    assert verifier.verify(token, at=clock.now() + timedelta(minutes=5, seconds=29)).identity.branch == "main"
    with pytest.raises(ValueError):
        verifier.verify(token, at=later.replace(tzinfo=None))


def test_dry_run_of_an_old_token_uses_current_keys(
    verifier: TokenVerifier, issuer: OidcIssuer, clock: FrozenClock
) -> None:
    issued_at = clock.now()
    token = issuer.mint()
    clock.advance(timedelta(days=1))  # the token is long expired now, but not as of issued_at
    assert verifier.verify(token, at=issued_at).issued_at == issued_at
