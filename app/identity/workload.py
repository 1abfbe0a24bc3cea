"""A verified CI token: the workload identity its claims map to, and what single-use enforcement needs.

``WorkloadIdentity`` is a value of the decision core (``app.decision.identity``); it is re-exported here for
the callers that take it with the token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.decision.identity import WORKLOAD_FIELDS, RefType, WorkloadIdentity

__all__ = ["WORKLOAD_FIELDS", "RefType", "VerifiedToken", "WorkloadIdentity"]


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A CI token that passed every check, with what single-use enforcement needs."""

    identity: WorkloadIdentity
    replay_key: str  # sha256 of (issuer URL, jti), or of (issuer URL, signing input) without a jti
    expires_at: datetime
    issued_at: datetime | None = None
