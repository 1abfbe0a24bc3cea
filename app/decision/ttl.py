"""How long a lease may live: the earliest of what was asked, what the policy allows and the calendar."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from app.decision.intervals import Interval

BoundedBy = Literal["requested", "max_ttl", "window", "freeze", "break_glass"]


def bound_expiry(
    now: datetime,
    requested: timedelta,
    max_end: datetime,
    interval: Interval,
    next_freeze: datetime | None,
) -> tuple[datetime, BoundedBy]:
    """``expires_at`` and which bound set it.

    The bounds are ``now + requested``, ``max_end`` (``issued_at + max_ttl``, so renewals count from issue),
    the open interval's end (none when ``None``) and the next freeze start. Each is first raised to ``now``,
    so an expiry is never in the past (a ``max_end`` already passed yields ``now``, bounded by ``max_ttl``);
    on a tie the first in the order requested, max_ttl, freeze, window names the bound (a freeze cuts the
    open interval at its start, so when the two coincide it is the freeze that ended the lease).
    """
    if requested < timedelta(0):
        raise ValueError("a requested ttl cannot be negative")
    bounds: list[tuple[datetime | None, BoundedBy]] = [
        (now + requested, "requested"),
        (max_end, "max_ttl"),
        (next_freeze, "freeze"),
        (interval.end, "window"),
    ]
    expires_at: datetime = now + requested
    bounded_by: BoundedBy = "requested"
    for at, by in bounds:
        if at is not None and max(at, now) < expires_at:
            expires_at, bounded_by = max(at, now), by
    return expires_at, bounded_by


def latest_reachable_end(max_end: datetime, interval: Interval, next_freeze: datetime | None) -> datetime:
    """The latest instant a lease granted now could reach by renewals, as known now (docs/API.md, ``token``):
    the earliest of ``issued_at + max_ttl``, the open interval's end and the next freeze start. Vault is told
    it as the credential's explicit max TTL, so neither renew-self nor a late renewal outlives the window."""
    return min(at for at in (max_end, interval.end, next_freeze) if at is not None)


def bound_break_glass(
    now: datetime, requested: timedelta, max_end: datetime, break_glass_end: datetime
) -> tuple[datetime, BoundedBy]:
    """``expires_at`` of a lease granted as a break-glass exception, and which bound set it: the windows and
    freezes it was excused from bound nothing; ``now + requested``, ``max_end`` (``issued_at + max_ttl``) and
    ``break_glass_end`` (``issued_at +`` the exception's ``max_ttl``) do, in that order on a tie."""
    if requested < timedelta(0):
        raise ValueError("a requested ttl cannot be negative")
    expires_at: datetime = now + requested
    bounded_by: BoundedBy = "requested"
    for at, by in ((max_end, "max_ttl"), (break_glass_end, "break_glass")):
        if max(at, now) < expires_at:
            expires_at, bounded_by = max(at, now), by  # type: ignore[assignment]
    return expires_at, bounded_by
