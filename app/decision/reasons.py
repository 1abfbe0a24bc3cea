"""Why a request was refused: a machine code plus a sentence for the human reading the denial."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    message: str
    policy: str | None = None  # which policy produced it, when several name the secret

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.policy is not None:
            data["policy"] = self.policy
        return data


# Reason codes of docs/API.md, for lease denials.
UNKNOWN_SECRET = "unknown_secret"
NO_POLICY = "no_policy"
ISSUER_NOT_ALLOWED = "issuer_not_allowed"
REPOSITORY_NOT_ALLOWED = "repository_not_allowed"
BRANCH_NOT_ALLOWED = "branch_not_allowed"
TAG_NOT_ALLOWED = "tag_not_allowed"
REF_NOT_PROTECTED = "ref_not_protected"
ENVIRONMENT_NOT_ALLOWED = "environment_not_allowed"
# The policy requires a protected environment and the token's is not, or does not say (GitLab's
# environment_protected; GitHub states none). An addition to docs/API.md's codes. A repository_ids mismatch
# reuses repository_not_allowed, its message naming the id.
ENVIRONMENT_NOT_PROTECTED = "environment_not_protected"
RUNNER_NOT_ALLOWED = "runner_not_allowed"
EVENT_NOT_ALLOWED = "event_not_allowed"
OUTSIDE_WINDOW = "outside_window"
FREEZE_ACTIVE = "freeze_active"
MAX_ACTIVE_REACHED = "max_active_reached"
INVALID_REF = "invalid_ref"
# The workload's workflow (GitHub job_workflow_ref, GitLab ci_config_ref_uri) matches none of the policy's
# workflows; the client address is in none of its source_networks (docs/API.md, "Policies").
WORKFLOW_NOT_ALLOWED = "workflow_not_allowed"
NETWORK_NOT_ALLOWED = "network_not_allowed"
MAX_TTL_REACHED = "max_ttl_reached"  # renewal only: the lease has lived its policy's max_ttl

# Approvals and break-glass (docs/API.md): refusing an approver (403), claiming a request that cannot
# obtain a lease (403, or 409 while pending or once used).
SELF_APPROVAL = "self_approval"
NOT_AN_APPROVER = "not_an_approver"
APPROVAL_DENIED = "approval_denied"
APPROVAL_EXPIRED = "approval_expired"
APPROVAL_PENDING = "approval_pending"
APPROVAL_USED = "approval_used"  # an addition: the request already obtained its one lease

# Reason codes for refused CI tokens (401; 503 for issuer_unavailable).
MALFORMED_TOKEN = "malformed_token"
UNSUPPORTED_ALGORITHM = "unsupported_algorithm"
UNKNOWN_ISSUER = "unknown_issuer"
UNKNOWN_KEY = "unknown_key"
BAD_SIGNATURE = "bad_signature"
BAD_AUDIENCE = "bad_audience"
TOKEN_EXPIRED = "token_expired"
TOKEN_NOT_YET_VALID = "token_not_yet_valid"
TOKEN_REPLAYED = "token_replayed"
ISSUER_UNAVAILABLE = "issuer_unavailable"

# A client held back after too many failed authentications (429).
TOO_MANY_FAILURES = "too_many_failures"
