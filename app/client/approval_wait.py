"""Waiting for people to approve a lease (``202``, docs/API.md "Approvals and break-glass").

The client says who must approve and the exact command to do it, then polls the request with backoff —
each poll with a fresh ID token where the platform mints them (GitHub); GitLab's one job token still works,
since a pending request does not use up its ``jti`` — until it is approved (then it claims the lease),
denied or expired (exit 3), or ``--approval-timeout`` passes (exit 3).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.client.broker import ApprovalView, BrokerClient, LeaseView
from app.client.errors import DenialReason, Denied, Unavailable
from app.client.report import Reporter

FIRST_POLL = 2.0  # seconds
MAX_POLL = 30.0
POLL_GROWTH = 1.5
DEFAULT_TIMEOUT = 30 * 60.0


@dataclass(frozen=True, slots=True)
class ApprovalWait:
    """How long to wait, and the broker URL people reach (for the command shown to them)."""

    timeout: float = DEFAULT_TIMEOUT
    url: str = ""


def poll_delays(
    first: float = FIRST_POLL, growth: float = POLL_GROWTH, cap: float = MAX_POLL
) -> Callable[[], float]:
    """2 s, 3 s, 4.5 s, ... at most 30 s between polls."""
    delay = first / growth

    def next_delay() -> float:
        nonlocal delay
        delay = min(cap, delay * growth)
        return delay

    return next_delay


def how_to_approve(pending: ApprovalView, url: str) -> list[str]:
    who = ", ".join(pending.approvers) if pending.approvers else "any admin or approver"
    what = "a break-glass exception for" if pending.kind == "break_glass" else "the lease of"
    prefix = f"TRANSOM_URL={url} " if url else ""
    return [
        f"{what} {pending.secret} waits for approval {pending.id}: {pending.required} of {who} must approve "
        f"by {pending.expires_at}",
        f"to approve: {prefix}TRANSOM_TOKEN=<your token> transom approvals approve {pending.id}",
    ]


def wait_for_approval(
    broker: BrokerClient,
    token: Callable[[], str],
    report: Reporter,
    pending: ApprovalView,
    *,
    wait: ApprovalWait,
    ttl: str | None,
    monotonic: Callable[[], float],
    sleep: Callable[[float], None],
    stop: Callable[[], bool],
) -> LeaseView | None:
    """The lease, once approved and claimed; ``None`` when ``stop()`` turned true while waiting."""
    for line in how_to_approve(pending, wait.url):
        report.info(line)
    deadline = monotonic() + wait.timeout
    delays = poll_delays()
    seen = len(pending.approvals)
    current = pending
    while current.status == "pending":
        if stop():
            return None
        left = deadline - monotonic()
        if left <= 0:
            raise Denied(
                f"approval {pending.id} was not given within --approval-timeout",
                reasons=(DenialReason("approval_timeout", "the client stopped waiting"),),
            )
        sleep(min(delays(), left))
        try:
            current = broker.show_approval(pending.id, token())
        except Unavailable as error:  # a broker restart or a network blip: keep waiting
            report.info(f"still waiting for {pending.id} ({error})")
            continue
        if len(current.approvals) != seen:
            seen = len(current.approvals)
            report.info(
                f"{pending.id}: {seen} of {current.required} approvals ({', '.join(current.approvals)})"
            )
    if current.status != "approved":
        code = "approval_denied" if current.status == "denied" else "approval_expired"
        why = f" ({current.end_reason})" if current.end_reason else ""
        raise Denied(
            f"approval {pending.id} was {current.status}{why}",
            reasons=(DenialReason(code, f"the approval request was {current.status}{why}"),),
        )
    report.info(f"{pending.id} approved; claiming the lease")
    claimed = broker.request_lease(pending.secret, token(), ttl=ttl, approval=pending.id)
    if not isinstance(claimed, LeaseView):
        raise Unavailable(f"claiming {pending.id} answered another approval request")
    return claimed
