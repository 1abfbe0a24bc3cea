"""A lease's life as a person reads it: requested → granted → renewed → ended, from its ledger events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.audit.models import AuditEvent
from app.identity.workload import WorkloadIdentity
from app.instants import format_instant, parse_instant
from app.leases.models import Lease, LeaseStatus

TITLES = {
    "lease.granted": ("granted", "ok"),
    "lease.renewed": ("renewed", "ok"),
    "lease.renew_denied": ("renewal denied", "bad"),
    "lease.reissued": ("credentials reissued", "info"),
    "lease.revoke_failed": ("revocation at Vault failed", "warn"),
    "lease.released": ("released", "end"),
    "lease.expired": ("expired", "end"),
    "lease.revoked": ("revoked", "end"),
    "lease.issue_failed": ("issue failed", "bad"),
}
FACT_LABELS = (
    ("expires_at", "until"),
    ("bounded_by", "bounded by"),
    ("ttl", "ttl (s)"),
    ("end_reason", "reason"),
    ("note", "note"),
    ("reason", "why"),
    ("error_class", "error"),
    ("attempt", "attempt"),
    ("attempts", "attempts"),
    ("next_attempt_at", "next attempt"),
)


@dataclass(frozen=True, slots=True)
class Entry:
    at: datetime
    title: str
    tone: str  # ok | info | warn | bad | end | pending
    actor: str | None = None
    facts: list[tuple[str, str]] = field(default_factory=list)
    reasons: list[dict[str, Any]] = field(default_factory=list)
    vault_confirmed: bool = False
    event_id: int | None = None


def _shown(value: Any) -> str:
    if isinstance(value, str) and value[:2] == "20" and value.endswith("Z"):
        try:
            return format_instant(parse_instant(value).replace(microsecond=0)).replace("T", " ")
        except ValueError:
            return value
    return str(value)


def _facts(details: dict[str, Any]) -> list[tuple[str, str]]:
    return [(label, _shown(details[key])) for key, label in FACT_LABELS if details.get(key) not in (None, "")]


def timeline(lease: Lease, events: Sequence[AuditEvent]) -> list[Entry]:
    """The lease's events oldest first, after its request (the write-ahead row), and a pending end when
    Vault has not confirmed the revocation yet."""
    identity = WorkloadIdentity.from_dict(lease.identity)
    entries = [
        Entry(
            lease.created_at,
            "requested",
            "info",
            actor=f"ci:{identity.actor_id()}",
            facts=[("secret", lease.secret), ("policy", lease.policy), ("ref", lease.ref or "?")],
        )
    ]
    for event in events:
        title, tone = TITLES.get(event.action, (event.action, "info"))
        entries.append(
            Entry(
                event.at,
                title,
                tone,
                actor=f"{event.actor_type}:{event.actor_id}",
                facts=_facts(event.details),
                reasons=list(event.reasons),
                vault_confirmed=bool(event.details.get("vault_confirmed")),
                event_id=event.id,
            )
        )
    if lease.status == LeaseStatus.REVOKING:
        entries.append(
            Entry(
                lease.updated_at,
                f"ending ({lease.end_reason or 'revoked'}): waiting for Vault to confirm",
                "pending",
                facts=[("attempts so far", str(lease.revoke_attempts))],
            )
        )
    return entries
