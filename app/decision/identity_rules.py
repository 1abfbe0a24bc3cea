"""The rules of a policy about who the workload is: issuer, repository (name and id), ref, protection,
environment, runner and event. Pure, as all of ``app/decision``; the calendar and ``max_active`` rules are in
:mod:`app.decision.policy`.

A claim the token does not state is unknown, never true: a rule that restricts that field denies
(docs/ARCHITECTURE.md, "Workload identity"). Messages name the offending identity value and what the policy
allows; they reach only insiders (:mod:`app.decision.outsiders`).
"""

from __future__ import annotations

from app.decision.identity import WorkloadIdentity
from app.decision.messages import listing, show
from app.decision.patterns import matches_any
from app.decision.policy_view import PolicyView
from app.decision.reasons import (
    BRANCH_NOT_ALLOWED,
    ENVIRONMENT_NOT_ALLOWED,
    ENVIRONMENT_NOT_PROTECTED,
    EVENT_NOT_ALLOWED,
    INVALID_REF,
    ISSUER_NOT_ALLOWED,
    REF_NOT_PROTECTED,
    REPOSITORY_NOT_ALLOWED,
    RUNNER_NOT_ALLOWED,
    TAG_NOT_ALLOWED,
    Reason,
)

# Events a policy without an ``events`` list allows: those that run the repository's own trusted code
# (docs/API.md, "Policies"). Everything else — pull_request, pull_request_target, workflow_run,
# issue_comment, pull_request_review*, merge_request_event, external_pull_request_event, ... — must be listed.
GITHUB_DEFAULT_EVENTS: frozenset[str] = frozenset(
    {"push", "workflow_dispatch", "schedule", "release", "deployment", "merge_group"}
)
GITLAB_DEFAULT_EVENTS: frozenset[str] = frozenset(
    {"push", "web", "schedule", "api", "trigger", "pipeline", "parent_pipeline"}
)
# One list for every issuer: the two platforms' names for untrusted events never appear in the other's list
# (GitHub has no "web"/"api"/"trigger"/"pipeline" event, GitLab no "release"/"deployment"/... source), so
# the union decides exactly as the flavor's own list for signed GitHub and GitLab tokens. A generic issuer
# maps its own event claim and gets the union too; its admin lists events explicitly to be stricter.
DEFAULT_EVENTS: frozenset[str] = GITHUB_DEFAULT_EVENTS | GITLAB_DEFAULT_EVENTS


def admits_source(policy: PolicyView, identity: WorkloadIdentity) -> bool:
    """Whether ``policy`` allows the workload's issuer and repository (name, and id when it lists ids):
    what makes a workload an insider (:mod:`app.decision.outsiders`)."""
    return (
        identity.issuer == policy.issuer
        and identity.repository is not None
        and matches_any(policy.repositories, identity.repository)
        and _repository_id_allowed(policy, identity)
    )


def _repository_id_allowed(policy: PolicyView, identity: WorkloadIdentity) -> bool:
    return policy.repository_ids is None or (
        identity.repository_id is not None and str(identity.repository_id) in policy.repository_ids
    )


def identity_reasons(
    identity: WorkloadIdentity, policy: PolicyView, *, ref_problem: str | None
) -> list[Reason]:
    """Every identity rule of ``policy`` that ``identity`` fails, in a stable order; empty: all pass."""
    reasons = _check_issuer(identity, policy)
    if ref_problem is not None:
        reasons.append(Reason(INVALID_REF, f"the token's ref is invalid: {ref_problem}", policy.name))
    reasons += _check_repository(identity, policy)
    if ref_problem is None:
        reasons += _check_ref(identity, policy)
    reasons += _check_protected_ref(identity, policy)
    reasons += _check_environment(identity, policy)
    reasons += _check_runner(identity, policy)
    reasons += _check_events(identity, policy)
    return reasons


def _check_issuer(identity: WorkloadIdentity, policy: PolicyView) -> list[Reason]:
    if identity.issuer == policy.issuer:
        return []
    message = f"issuer {show(identity.issuer)} is not this policy's issuer {show(policy.issuer)}"
    return [Reason(ISSUER_NOT_ALLOWED, message, policy.name)]


def _check_repository(identity: WorkloadIdentity, policy: PolicyView) -> list[Reason]:
    messages: list[str] = []
    if identity.repository is None:
        messages.append("the token states no repository")
    elif not policy.repositories:
        messages.append(
            f"repository {show(identity.repository)} is not allowed: this policy allows no repositories"
        )
    elif not matches_any(policy.repositories, identity.repository):
        messages.append(
            f"repository {show(identity.repository)} does not match any of: {listing(policy.repositories)}"
        )
    if not _repository_id_allowed(policy, identity):
        # The id outlives a rename: a repository created under a deleted or renamed one's name has another.
        allowed = listing(policy.repository_ids or ())
        if identity.repository_id is None:
            messages.append(f"the token states no repository id; allowed ids: {allowed}")
        else:
            messages.append(
                f"repository id {show(str(identity.repository_id))} is not one of: {allowed} "
                "(a repository created under a renamed or deleted one's name has another id)"
            )
    return [Reason(REPOSITORY_NOT_ALLOWED, message, policy.name) for message in messages]


def _check_ref(identity: WorkloadIdentity, policy: PolicyView) -> list[Reason]:
    name = policy.name
    if identity.ref_type == "branch" and identity.branch is not None:
        if not policy.branches:
            message = f"branch {show(identity.branch)} is not allowed: this policy allows no branches"
        elif matches_any(policy.branches, identity.branch):
            return []
        else:
            message = f"branch {show(identity.branch)} does not match any of: {listing(policy.branches)}"
        return [Reason(BRANCH_NOT_ALLOWED, message, name)]
    if identity.ref_type == "tag" and identity.tag is not None:
        if not policy.tags:
            message = f"tag {show(identity.tag)} is not allowed: this policy allows no tags"
        elif matches_any(policy.tags, identity.tag):
            return []
        else:
            message = f"tag {show(identity.tag)} does not match any of: {listing(policy.tags)}"
        return [Reason(TAG_NOT_ALLOWED, message, name)]
    # Neither a branch nor a tag as far as the token says (a pull-request merge ref, a missing claim...).
    if identity.ref is None:
        message = "the token states neither a branch nor a tag; policies grant only those"
    else:
        message = f"ref {show(identity.ref)} is neither a branch nor a tag; policies grant only those"
    return [Reason(BRANCH_NOT_ALLOWED, message, name)]


def _check_protected_ref(identity: WorkloadIdentity, policy: PolicyView) -> list[Reason]:
    if not policy.require_protected_ref or identity.ref_protected is True:
        return []
    if identity.ref_protected is None:
        message = (
            "the token does not state whether the ref is protected; this policy requires a protected ref"
        )
    else:
        message = "the ref is not protected; this policy requires a protected ref"
    return [Reason(REF_NOT_PROTECTED, message, policy.name)]


def _check_environment(identity: WorkloadIdentity, policy: PolicyView) -> list[Reason]:
    reasons: list[Reason] = []
    if policy.environments and identity.environment not in policy.environments:
        if identity.environment is None:
            message = f"the job names no environment; allowed: {listing(policy.environments)}"
        else:
            allowed = listing(policy.environments)
            message = f"environment {show(identity.environment)} is not one of: {allowed}"
        reasons.append(Reason(ENVIRONMENT_NOT_ALLOWED, message, policy.name))
    if policy.require_protected_environment and identity.environment_protected is not True:
        # GitLab states environment_protected; GitHub does not, so there this requirement always denies.
        if identity.environment_protected is None:
            message = (
                "the token does not state whether its environment is protected; "
                "this policy requires a protected environment"
            )
        else:
            shown = show(identity.environment) if identity.environment is not None else "of the job"
            message = f"environment {shown} is not protected; this policy requires a protected environment"
        reasons.append(Reason(ENVIRONMENT_NOT_PROTECTED, message, policy.name))
    return reasons


def _check_runner(identity: WorkloadIdentity, policy: PolicyView) -> list[Reason]:
    reasons: list[Reason] = []
    if policy.runner_environments and identity.runner_environment not in policy.runner_environments:
        if identity.runner_environment is None:
            allowed = listing(policy.runner_environments)
            message = f"the token states no runner environment; allowed: {allowed}"
        else:
            message = (
                f"runner environment {show(identity.runner_environment)} is not one of: "
                f"{listing(policy.runner_environments)}"
            )
        reasons.append(Reason(RUNNER_NOT_ALLOWED, message, policy.name))
    runner_id = None if identity.runner_id is None else str(identity.runner_id)
    if policy.runner_ids and runner_id not in policy.runner_ids:
        if runner_id is None:
            message = f"the token states no runner id; allowed: {listing(policy.runner_ids)}"
        else:
            message = f"runner id {show(runner_id)} is not one of: {listing(policy.runner_ids)}"
        reasons.append(Reason(RUNNER_NOT_ALLOWED, message, policy.name))
    return reasons


def _check_events(identity: WorkloadIdentity, policy: PolicyView) -> list[Reason]:
    event = identity.event
    if policy.events is None:
        defaults = listing(sorted(DEFAULT_EVENTS))
        if event is not None and event in DEFAULT_EVENTS:
            return []
        if event is None:
            message = (
                "the token does not state its event; without an events list this policy grants only: "
                + defaults
            )
        else:
            message = (
                f"event {show(event)} is not one of the trusted events a policy without an events list "
                "allows; list it in the policy's events to allow it"
            )
    elif event is not None and event in policy.events:
        return []
    elif not policy.events:
        message = "this policy allows no events (its events list is empty)"
    elif event is None:
        message = f"the token does not state its event; allowed: {listing(policy.events)}"
    else:
        message = f"event {show(event)} is not one of: {listing(policy.events)}"
    return [Reason(EVENT_NOT_ALLOWED, message, policy.name)]
