"""GitHub, GitLab and generic ID token claims → one :class:`WorkloadIdentity` (docs/ARCHITECTURE.md).

Mapping never raises on a verified token's claims: what a token does not state (or states in a shape we do
not understand) is ``None``, unknown, so a policy that restricts that field denies. Refs are mapped as given;
:func:`ref_problem` tells the decision layer whether to deny with ``invalid_ref``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

from app.identity.issuer_config import IssuerConfig
from app.identity.workload import RefType, WorkloadIdentity

MAX_REF_BYTES = 255
BRANCH_PREFIX = "refs/heads/"
TAG_PREFIX = "refs/tags/"

# Built-in maps: normalized name -> claim. The ref of GitLab (and of generic issuers that send a short
# ref) is assembled by _assemble_ref, ref_protected by _flag.
_GITHUB: Mapping[str, str] = {
    "subject": "sub",
    "repository": "repository",
    "repository_id": "repository_id",
    "ref": "ref",
    "ref_type": "ref_type",
    "ref_protected": "ref_protected",
    "environment": "environment",
    "runner_environment": "runner_environment",
    "pipeline_id": "run_id",
    "run_attempt": "run_attempt",
    "actor": "actor",
    "triggering_actor": "triggering_actor",
    "event": "event_name",
    "sha": "sha",
    "workflow": "job_workflow_ref",
}
_GITLAB: Mapping[str, str] = {
    "subject": "sub",
    "repository": "project_path",
    "repository_id": "project_id",
    "ref": "ref",  # the short name; ref_path is preferred when present
    "ref_type": "ref_type",
    "ref_protected": "ref_protected",
    "environment": "environment",
    "runner_environment": "runner_environment",
    "runner_id": "runner_id",
    "pipeline_id": "pipeline_id",
    "job_id": "job_id",
    "actor": "user_login",
    "event": "pipeline_source",
    "sha": "sha",
    "workflow": "ci_config_ref_uri",
    "environment_protected": "environment_protected",
}
_TEXT_FIELDS = (
    "subject",
    "repository",
    "repository_id",
    "environment",
    "runner_environment",
    "runner_id",
    "pipeline_id",
    "run_attempt",
    "job_id",
    "actor",
    "triggering_actor",
    "event",
    "sha",
    "workflow",
)


def map_claims(config: IssuerConfig, claims: Mapping[str, Any]) -> WorkloadIdentity:
    """Normalize a verified token's claims for ``config``'s flavor."""
    if config.flavor == "github":
        claim_map, ref_path_claim = _GITHUB, None
    elif config.flavor == "gitlab":
        claim_map, ref_path_claim = _GITLAB, "ref_path"
    else:
        claim_map, ref_path_claim = {"subject": "sub", **(config.claim_map or {})}, None

    def text(name: str) -> str | None:
        path = claim_map.get(name)
        return None if path is None else _text(_lookup(claims, path))

    claimed_type = text("ref_type")
    if ref_path_claim is not None:  # GitLab: ref is always a short name
        ref = _text(_lookup(claims, ref_path_claim)) or _assemble_ref(text("ref"), claimed_type)
    elif config.flavor == "generic":
        ref = _full_or_assembled(text("ref"), claimed_type) or _from_branch_or_tag(
            text("branch"), text("tag")
        )
    else:
        ref = text("ref")
    ref_type, branch, tag = split_ref(ref, claimed_type)
    protected_claim = claim_map.get("ref_protected")
    environment_protected_claim = claim_map.get("environment_protected")
    values = {name: text(name) for name in _TEXT_FIELDS}
    return WorkloadIdentity(
        issuer=config.name,
        ref=ref,
        ref_type=ref_type,
        branch=branch,
        tag=tag,
        ref_protected=_flag(_lookup(claims, protected_claim)) if protected_claim else None,
        environment_protected=(
            _flag(_lookup(claims, environment_protected_claim)) if environment_protected_claim else None
        ),
        **values,
    )


def split_ref(
    ref: str | None, claimed_type: str | None = None
) -> tuple[RefType | None, str | None, str | None]:
    """``(ref_type, branch, tag)`` of a full ref; all ``None`` unless it is a branch or tag ref.

    When the token also states a ``ref_type`` and it contradicts the ref, nothing is known (all ``None``):
    a tag must never pass for a branch of the same name, nor the other way round.
    """
    if ref is None:
        return None, None, None
    derived: RefType | None = None
    if ref.startswith(BRANCH_PREFIX) and len(ref) > len(BRANCH_PREFIX):
        derived, name = "branch", ref[len(BRANCH_PREFIX) :]
    elif ref.startswith(TAG_PREFIX) and len(ref) > len(TAG_PREFIX):
        derived, name = "tag", ref[len(TAG_PREFIX) :]
    if derived is None or (claimed_type is not None and claimed_type != derived):
        return None, None, None
    return (derived, name, None) if derived == "branch" else (derived, None, name)


def validate_ref(ref: str) -> str | None:
    """A sentence saying what is wrong with ``ref``, or ``None`` when it may be matched against policy."""
    if not ref:
        return "the ref is empty"
    try:
        size = len(ref.encode("utf-8"))
    except UnicodeEncodeError:
        return "the ref is not valid UTF-8"
    if size > MAX_REF_BYTES:
        return f"the ref is {size} bytes long; at most {MAX_REF_BYTES} are allowed"
    if any(unicodedata.category(ch) == "Cc" for ch in ref):
        return "the ref contains control characters"
    if ".." in ref:
        return "the ref contains '..'"
    if "//" in ref:
        return "the ref contains '//'"
    return None


def ref_problem(identity: WorkloadIdentity) -> str | None:
    """What is wrong with the identity's ref (deny with ``invalid_ref``), or ``None``.

    A missing ref is not a problem here: it is unknown, and the ref rules of a policy deny on their own.
    """
    return None if identity.ref is None else validate_ref(identity.ref)


def _full_or_assembled(ref: str | None, ref_type: str | None) -> str | None:
    """Generic issuers: a ref starting with ``refs/`` is taken as full, anything else as a short name."""
    if ref is not None and ref.startswith("refs/"):
        return ref
    return _assemble_ref(ref, ref_type)


def _from_branch_or_tag(branch: str | None, tag: str | None) -> str | None:
    """Generic issuers that state a branch or a tag claim instead of a ref; both at once is unknown."""
    if branch is not None and tag is None:
        return BRANCH_PREFIX + branch
    if tag is not None and branch is None:
        return TAG_PREFIX + tag
    return None


def _assemble_ref(ref: str | None, ref_type: str | None) -> str | None:
    """A short ref name + its type → the full ref; ``None`` when the type is not branch or tag."""
    if ref is None:
        return None
    if ref_type == "branch":
        return BRANCH_PREFIX + ref
    if ref_type == "tag":
        return TAG_PREFIX + ref
    return None


def _lookup(claims: Mapping[str, Any], path: str) -> Any:
    """A claim by name; a dotted name that is not itself a claim walks nested objects."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _text(value: Any) -> str | None:
    """Strings as they are, integers stringified; anything else (and ``""``) is unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value:
        return value
    return None


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if value == "true":
        return True
    if value == "false":
        return False
    return None
