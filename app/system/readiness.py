"""Readiness, checked at most once a second per process while the answer is "ready".

``/readyz`` needs no credential, and each real check costs a database round trip and two Vault calls; a
burst of probes (or anyone's curl loop) reuses the answer of the last second instead of passing every hit
on to Vault. A "not ready" answer is not kept beyond the burst that waited for it, so recovery shows at
once; checks never run concurrently, so even then a burst reaches Vault one check at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from app.clock import Clock

Answer = tuple[dict[str, Any], int]

FRESH_FOR = timedelta(seconds=1)


def reusable(status: int, checked_at: datetime, now: datetime, *, waited_for_it: bool) -> bool:
    """Whether the last answer serves a request at ``now``: "ready" for a second, and any answer to the
    requests that queued while it was being worked out."""
    if waited_for_it:
        return True
    return status == 200 and checked_at <= now < checked_at + FRESH_FOR


class ReadinessCache:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._answer: Answer | None = None
        self._checked_at: datetime | None = None
        self._checks = 0  # completed so far; a request that saw fewer waited for the latest one

    def answer(self, check: Callable[[], Answer]) -> Answer:
        seen = self._checks
        with self._lock:
            now = self._clock.now()
            last, checked_at = self._answer, self._checked_at
            if (
                last is None
                or checked_at is None
                or not reusable(last[1], checked_at, now, waited_for_it=self._checks > seen)
            ):
                last = self._answer = check()
                self._checked_at = now
                self._checks += 1
            body, status = last
            return dict(body), status
