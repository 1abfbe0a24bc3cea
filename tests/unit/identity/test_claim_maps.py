"""Claim maps (docs/ARCHITECTURE.md, "Workload identity") and ref validation, as pure functions."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.identity.claims import map_claims, ref_problem, split_ref, validate_ref
from app.identity.issuer_config import IssuerConfig
from app.identity.workload import WorkloadIdentity
from tests.support.oidc_issuer import github_claims, gitlab_claims

GITHUB = IssuerConfig("github", "https://token.actions.githubusercontent.com", "github", ("aud",))
GITLAB = IssuerConfig("gitlab", "https://gitlab.com", "gitlab", ("aud",))


def generic(**claim_map: str) -> IssuerConfig:
    return IssuerConfig("ci", "https://ci.example", "generic", ("aud",), claim_map=claim_map)


# ---------------------------------------------------------------------------------------------- GitHub

GITHUB_TABLE = [
    # (normalized field, claim, value in token, expected)
    ("repository", "repository", "acme/payments", "acme/payments"),
    ("ref", "ref", "refs/heads/main", "refs/heads/main"),
    ("environment", "environment", "production", "production"),
    ("runner_environment", "runner_environment", "self-hosted", "self-hosted"),
    ("pipeline_id", "run_id", "8412345678", "8412345678"),
    ("pipeline_id", "run_id", 8412345678, "8412345678"),
    ("run_attempt", "run_attempt", "3", "3"),
    ("run_attempt", "run_attempt", 3, "3"),
    ("actor", "actor", "octocat", "octocat"),
    ("event", "event_name", "workflow_dispatch", "workflow_dispatch"),
    ("sha", "sha", "f" * 40, "f" * 40),
    ("subject", "sub", "repo:acme/payments:ref:refs/heads/main", "repo:acme/payments:ref:refs/heads/main"),
    ("repository_id", "repository_id", "672013998", "672013998"),
]


@pytest.mark.parametrize(("field", "claim", "value", "expected"), GITHUB_TABLE)
def test_github_table(field: str, claim: str, value: Any, expected: str) -> None:
    claims = github_claims() | {claim: value}
    assert getattr(map_claims(GITHUB, claims), field) == expected


def test_github_has_no_runner_id_or_job_id_even_if_a_token_carries_them() -> None:
    identity = map_claims(GITHUB, github_claims() | {"runner_id": "1", "job_id": "2", "pipeline_id": "3"})
    assert (identity.runner_id, identity.job_id, identity.pipeline_id) == (None, None, "8412345678")


def test_github_environment_absent_when_the_job_names_none() -> None:
    assert map_claims(GITHUB, github_claims()).environment is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("false", False),
        ("TRUE", None),
        ("yes", None),
        (1, None),
    ],
)
def test_github_ref_protected_only_when_stated(value: Any, expected: bool | None) -> None:
    assert map_claims(GITHUB, github_claims() | {"ref_protected": value}).ref_protected is expected
    assert map_claims(GITHUB, github_claims()).ref_protected is None


@pytest.mark.parametrize(
    ("ref", "ref_type", "expected"),
    [
        ("refs/heads/main", "branch", ("branch", "main", None)),
        ("refs/heads/release/1.x", "branch", ("branch", "release/1.x", None)),
        ("refs/tags/v1", "tag", ("tag", None, "v1")),
        ("refs/tags/main", "tag", ("tag", None, "main")),
        ("refs/pull/7/merge", "branch", (None, None, None)),
        ("refs/heads/", "branch", (None, None, None)),
        ("main", "branch", (None, None, None)),  # GitHub refs are always full
        ("refs/tags/v1", "branch", (None, None, None)),  # contradiction: unknown
        ("refs/heads/main", "tag", (None, None, None)),
        ("refs/heads/main", None, ("branch", "main", None)),
    ],
)
def test_github_branch_and_tag_come_from_the_full_ref(
    ref: str, ref_type: str | None, expected: tuple[str | None, str | None, str | None]
) -> None:
    claims = github_claims(ref=ref) | {"ref_type": ref_type}
    identity = map_claims(GITHUB, claims)
    assert (identity.ref_type, identity.branch, identity.tag) == expected
    assert identity.ref == ref


# ---------------------------------------------------------------------------------------------- GitLab

GITLAB_TABLE = [
    ("repository", "project_path", "acme/group/payments", "acme/group/payments"),
    ("repository_id", "project_id", "20", "20"),
    ("environment", "environment", "production", "production"),
    ("runner_environment", "runner_environment", "gitlab-hosted", "gitlab-hosted"),
    ("runner_id", "runner_id", 12270831, "12270831"),
    ("runner_id", "runner_id", "12270831", "12270831"),
    ("pipeline_id", "pipeline_id", 574, "574"),
    ("job_id", "job_id", 302, "302"),
    ("actor", "user_login", "alice", "alice"),
    ("event", "pipeline_source", "merge_request_event", "merge_request_event"),
    ("sha", "sha", "e" * 40, "e" * 40),
]


@pytest.mark.parametrize(("field", "claim", "value", "expected"), GITLAB_TABLE)
def test_gitlab_table(field: str, claim: str, value: Any, expected: str) -> None:
    assert getattr(map_claims(GITLAB, gitlab_claims() | {claim: value}), field) == expected


def test_gitlab_has_no_run_attempt() -> None:
    assert map_claims(GITLAB, gitlab_claims() | {"run_attempt": "2"}).run_attempt is None


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("false", False), (True, True), ("1", None)])
def test_gitlab_ref_protected(value: Any, expected: bool | None) -> None:
    assert map_claims(GITLAB, gitlab_claims() | {"ref_protected": value}).ref_protected is expected


@pytest.mark.parametrize(
    ("ref", "ref_type", "ref_path", "expected"),
    [
        ("main", "branch", "refs/heads/main", ("refs/heads/main", "branch", "main", None)),
        ("main", "branch", None, ("refs/heads/main", "branch", "main", None)),
        ("main", "tag", "refs/tags/main", ("refs/tags/main", "tag", None, "main")),
        ("main", "tag", None, ("refs/tags/main", "tag", None, "main")),
        ("v1.0", "tag", None, ("refs/tags/v1.0", "tag", None, "v1.0")),
        # A branch literally named "refs/heads/main" is not the branch main.
        (
            "refs/heads/main",
            "branch",
            None,
            ("refs/heads/refs/heads/main", "branch", "refs/heads/main", None),
        ),
        # ref_type and ref_path disagree: unknown.
        ("main", "branch", "refs/tags/main", ("refs/tags/main", None, None, None)),
        # No usable type and no ref_path: no ref at all.
        ("main", None, None, (None, None, None, None)),
        ("main", "merge_request", None, (None, None, None, None)),
    ],
)
def test_gitlab_refs(
    ref: str, ref_type: str | None, ref_path: str | None, expected: tuple[str | None, ...]
) -> None:
    claims = gitlab_claims(ref=ref) | {"ref_type": ref_type}
    claims.pop("ref_path", None)
    if ref_path is not None:
        claims["ref_path"] = ref_path
    identity = map_claims(GITLAB, claims)
    assert (identity.ref, identity.ref_type, identity.branch, identity.tag) == expected


# --------------------------------------------------------------------------------------------- generic


def test_generic_nested_and_dotted_claims() -> None:
    config = generic(
        repository="project.full_name", ref="git.ref", runner_id="runner.id", actor="https://x.example/actor"
    )
    claims = {
        "sub": "s",
        "project": {"full_name": "acme/payments"},
        "git": {"ref": "refs/tags/v2"},
        "runner": {"id": 7},
        "https://x.example/actor": "carol",
    }
    identity = map_claims(config, claims)
    assert identity.subject == "s"
    assert (identity.repository, identity.ref, identity.tag, identity.runner_id, identity.actor) == (
        "acme/payments",
        "refs/tags/v2",
        "v2",
        "7",
        "carol",
    )
    assert identity.issuer == "ci"


def test_generic_missing_or_odd_nested_claims_are_unknown() -> None:
    config = generic(repository="a.b.c", ref="git.ref", environment="env")
    for claims in ({}, {"a": "flat"}, {"a": {"b": ["c"]}}, {"a": {"b": {"c": {"deeper": 1}}}}, {"env": ""}):
        identity = map_claims(config, claims)
        assert (identity.repository, identity.ref, identity.environment) == (None, None, None)


@pytest.mark.parametrize(
    ("mapping", "claims", "expected"),
    [
        ({"ref": "r", "ref_type": "t"}, {"r": "main", "t": "branch"}, ("refs/heads/main", "main", None)),
        ({"ref": "r", "ref_type": "t"}, {"r": "main", "t": "tag"}, ("refs/tags/main", None, "main")),
        ({"ref": "r"}, {"r": "refs/heads/dev"}, ("refs/heads/dev", "dev", None)),
        ({"ref": "r"}, {"r": "main"}, (None, None, None)),
        ({"branch": "b"}, {"b": "main"}, ("refs/heads/main", "main", None)),
        ({"tag": "t"}, {"t": "main"}, ("refs/tags/main", None, "main")),
        ({"branch": "b", "tag": "t"}, {"b": "main", "t": "main"}, (None, None, None)),
        ({"ref": "r", "branch": "b"}, {"r": "refs/tags/v1", "b": "main"}, ("refs/tags/v1", None, "v1")),
    ],
)
def test_generic_refs(
    mapping: dict[str, str], claims: dict[str, Any], expected: tuple[str | None, ...]
) -> None:
    identity = map_claims(generic(**mapping), claims)
    assert (identity.ref, identity.branch, identity.tag) == expected


@pytest.mark.parametrize("value", [True, 1.5, [], {}, None, ""])
def test_values_that_are_not_strings_or_integers_are_unknown(value: Any) -> None:
    assert map_claims(GITHUB, github_claims() | {"repository": value}).repository is None


# ------------------------------------------------------------------------------------------------ refs

REF_CASES = [
    ("refs/heads/main", None),
    ("refs/heads/feature/ä-ü", None),
    ("refs/heads/" + "x" * 244, None),  # 255 bytes exactly
    ("refs/heads/" + "x" * 245, "bytes"),
    ("refs/heads/" + "é" * 122, None),  # 11 + 244 = 255 bytes
    ("refs/heads/" + "é" * 123, "bytes"),
    ("refs/heads/a..b", ".."),
    ("refs/heads/..", ".."),
    ("refs//heads/main", "//"),
    ("refs/heads/main//", "//"),
    ("refs/heads/ma\x00in", "control"),
    ("refs/heads/main\n", "control"),
    ("refs/heads/\x7f", "control"),
    ("refs/heads/\x85", "control"),
    ("refs/heads/\x1b[2J", "control"),
    ("", "empty"),
    ("refs/heads/\ud800", "UTF-8"),
]


@pytest.mark.parametrize(("ref", "problem"), REF_CASES)
def test_validate_ref(ref: str, problem: str | None) -> None:
    found = validate_ref(ref)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_ref_problem_of_an_identity() -> None:
    assert ref_problem(WorkloadIdentity(issuer="x")) is None  # unknown ref: not a problem of the ref
    assert ref_problem(WorkloadIdentity(issuer="x", ref="refs/heads/ok")) is None
    assert ref_problem(WorkloadIdentity(issuer="x", ref="refs/heads/a..b")) is not None


def test_mapping_a_bad_ref_does_not_raise() -> None:
    identity = map_claims(GITHUB, github_claims(ref="refs/heads/../../etc"))
    assert identity.branch == "../../etc"
    assert ref_problem(identity) is not None


def test_split_ref_without_ref() -> None:
    assert split_ref(None) == (None, None, None)


# ------------------------------------------------------------------------------------------ properties

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
claim_names = st.sampled_from(
    [
        "ref",
        "ref_type",
        "ref_path",
        "ref_protected",
        "repository",
        "project_path",
        "runner_id",
        "sub",
        "a",
        "a.b",
    ]
)


@given(claims=st.dictionaries(claim_names | st.text(max_size=10), json_values, max_size=12))
def test_mapping_never_raises_and_never_invents(claims: dict[str, Any]) -> None:
    for config in (GITHUB, GITLAB, generic(ref="ref", ref_type="ref_type", repository="a.b", branch="a")):
        identity = map_claims(config, claims)
        if identity.branch is not None:
            assert identity.ref == "refs/heads/" + identity.branch and identity.ref_type == "branch"
        if identity.tag is not None:
            assert identity.ref == "refs/tags/" + identity.tag and identity.ref_type == "tag"
        assert identity.branch is None or identity.tag is None
        for value in (identity.repository, identity.runner_id, identity.pipeline_id, identity.ref):
            assert value is None or (isinstance(value, str) and value)
        ref_problem(identity)
