"""The one shape of a CI workload's identity, whatever CI platform signed its token.

A value of the decision core: ``app.identity`` builds it from a verified token; the decision core, the lease
service and the ledger read it. Pure data, so it depends on nothing.
A claim the token did not state is ``None`` (unknown), never a default that could be mistaken for true.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any, Literal

RefType = Literal["branch", "tag"]

# The claims that make two identities the same workload, in the order the workload key hashes them.
WORKLOAD_FIELDS = (
    "issuer",
    "repository",
    "repository_id",
    "ref",
    "sha",
    "environment",
    "environment_protected",
    "runner_environment",
    "runner_id",
    "event",
    "pipeline_id",
    "run_attempt",
    "job_id",
    "workflow",
)


@dataclass(frozen=True, slots=True)
class WorkloadIdentity:
    issuer: str  # the Transom issuer *name* (e.g. "github"), not the URL
    subject: str | None = None
    repository: str | None = None
    repository_id: str | None = None
    ref: str | None = None  # full ref: refs/heads/main, refs/tags/v1
    ref_type: RefType | None = None
    branch: str | None = None
    tag: str | None = None
    ref_protected: bool | None = None  # None: the token did not say
    environment: str | None = None
    environment_protected: bool | None = None  # GitLab only; None: the token did not say
    runner_environment: str | None = None
    runner_id: str | None = None
    pipeline_id: str | None = None
    run_attempt: str | None = None
    job_id: str | None = None
    actor: str | None = None
    triggering_actor: str | None = None  # GitHub: who re-ran the workflow, when not the actor
    event: str | None = None
    sha: str | None = None
    workflow: str | None = None  # GitHub job_workflow_ref, GitLab ci_config_ref_uri

    def workload_tuple(self) -> tuple[Any, ...]:
        """What owns a lease: the identity claim for claim (docs/API.md, "the same workload"), so two jobs of
        one run that differ in environment, runner or workflow are different workloads. Subject, actor and
        what derives from ``ref`` are left out: a re-run by someone else already has another run_attempt."""
        return tuple(getattr(self, name) for name in WORKLOAD_FIELDS)

    def workload_key(self) -> str:
        """A stable digest of :meth:`workload_tuple`, for indexing and comparing owners. Migration 0003
        computes the same digest from stored identities: change both together."""
        encoded = json.dumps(self.workload_tuple(), separators=(",", ":"))
        return hashlib.sha256(encoded.encode()).hexdigest()

    def actor_id(self) -> str:
        """How the ledger names this workload: ``acme/payments@run-1234``."""
        run = self.pipeline_id or "unknown"
        return f"{self.repository or 'unknown'}@run-{run}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkloadIdentity:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})
