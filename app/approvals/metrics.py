"""The approvals' Prometheus metrics, in the default registry, registered on first use (as ``app/metrics.py``
does): a process that never grants break-glass or delivers a notification shows neither.

Labels are a policy name, an event name and an outcome: configuration vocabulary, never an identity.
"""

from __future__ import annotations

import threading

from prometheus_client import Counter

_lock = threading.Lock()
_break_glass: Counter | None = None
_notifications: Counter | None = None


def break_glass_granted() -> Counter:
    """``transom_break_glass_granted_total{policy}``: leases granted as a break-glass exception."""
    global _break_glass
    with _lock:
        if _break_glass is None:
            _break_glass = Counter(
                "transom_break_glass_granted",
                "Leases granted as a break-glass exception to their policy's windows and freezes.",
                ["policy"],
            )
        return _break_glass


def notifications() -> Counter:
    """``transom_notifications_total{event,outcome}``: delivery attempts of notifications (``delivered``,
    ``retrying``, ``given_up``)."""
    global _notifications
    with _lock:
        if _notifications is None:
            _notifications = Counter(
                "transom_notifications",
                "Attempts to deliver a notification to the webhook, by event and outcome.",
                ["event", "outcome"],
            )
        return _notifications
