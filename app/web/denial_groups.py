"""The Denials page's arithmetic (pure): refused requests grouped by the reasons they were refused for.

Each request counts once, under the whole set of its reason codes (a request refused for a branch and a
runner is one request, not two), and a burst summary event counts the requests it stands for
(``details.count``, docs/API.md "Rate limits").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from app.audit.ledger import event_to_dict
from app.audit.models import AuditEvent


@dataclass
class DenialGroup:
    """The refused requests that carried exactly these reason codes."""

    codes: tuple[str, ...]
    requests: int = 0
    repositories: set[str] = field(default_factory=set)
    secrets: set[str] = field(default_factory=set)
    latest: list[dict[str, Any]] = field(default_factory=list)


def requests_of(event: AuditEvent) -> int:
    """How many refused requests one event records: a burst summary's ``count``, else one."""
    count = (event.details or {}).get("count")
    return count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else 1


def reason_codes(event: AuditEvent) -> tuple[str, ...]:
    codes = {str(reason.get("code", "unknown")) for reason in event.reasons or []}
    return tuple(sorted(codes)) or ("unknown",)


def group_denials(events: Sequence[AuditEvent], *, examples: int = 5) -> list[DenialGroup]:
    """Groups by reason set, the most requests first; ``events`` come newest first."""
    groups: dict[tuple[str, ...], DenialGroup] = {}
    for event in events:
        codes = reason_codes(event)
        group = groups.setdefault(codes, DenialGroup(codes))
        group.requests += requests_of(event)
        if event.repository:
            group.repositories.add(event.repository)
        if event.secret:
            group.secrets.add(event.secret)
        if len(group.latest) < examples:
            group.latest.append(event_to_dict(event))
    return sorted(groups.values(), key=lambda g: (-g.requests, g.codes))


def total_requests(groups: Sequence[DenialGroup]) -> int:
    return sum(group.requests for group in groups)
