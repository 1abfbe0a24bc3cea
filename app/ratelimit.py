"""Refusing a client that keeps failing to authenticate: 429 with ``Retry-After``.

Failed authentications (401 answers) are counted per client address in fixed windows. Once a client
reaches the limit within a window, every request from it is refused until that window ends. Successful
requests are never counted, so many CI jobs behind one address are not slowed down; a stream of forged,
expired or replayed tokens is. The count is per process: N replicas admit at most N times the limit.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Flask, Response, request

from app.clock import Clock
from app.decision.reasons import TOO_MANY_FAILURES, Reason
from app.errors import AppError

MAX_CLIENTS = 10_000  # windows remembered at once; the oldest go first


@dataclass(slots=True)
class _Window:
    start: datetime
    failures: int = 0


class FailureLimiter:
    def __init__(
        self, limit: int, window: timedelta, clock: Clock, *, max_clients: int = MAX_CLIENTS
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._limit = limit
        self._window = window
        self._clock = clock
        self._max_clients = max_clients
        self._windows: OrderedDict[str, _Window] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may try again; None when it is not held back."""
        now = self._clock.now()
        with self._lock:
            window = self._current(client, now)
            if window is None or window.failures < self._limit:
                return None
            return max(1, math.ceil((window.start + self._window - now).total_seconds()))

    def record_failure(self, client: str) -> None:
        now = self._clock.now()
        with self._lock:
            window = self._current(client, now)
            if window is None:
                window = self._windows[client] = _Window(now)
                while len(self._windows) > self._max_clients:
                    self._windows.popitem(last=False)
            window.failures += 1

    def _current(self, client: str, now: datetime) -> _Window | None:
        window = self._windows.get(client)
        if window is not None and now >= window.start + self._window:
            del self._windows[client]
            return None
        return window


# --- wiring into the app ------------------------------------------------------------------------------

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})  # probes and scrapers are never held back


def install(app: Flask, limiter: FailureLimiter) -> None:
    """Refuse held-back clients before anything else runs; count every 401 the app answers."""

    def refuse_held_back() -> None:
        if request.path in EXEMPT_PATHS:
            return
        wait = limiter.retry_after(_client())
        if wait is not None:
            raise TooManyFailures(wait)

    def count_failure(response: Response) -> Response:
        if response.status_code == 401:
            limiter.record_failure(_client())
        return response

    app.before_request(refuse_held_back)
    app.after_request(count_failure)


def _client() -> str:
    return request.remote_addr or "unknown"


class TooManyFailures(AppError):
    status, type_, title = 429, "rate-limited", "Too many failed authentications"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"This address failed to authenticate too often; retry after {retry_after} s.",
            reasons=[Reason(TOO_MANY_FAILURES, f"too many failed authentications; wait {retry_after} s")],
            headers={"Retry-After": str(retry_after)},
        )
