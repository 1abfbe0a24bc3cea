"""Holding back a client that keeps failing: 429 with ``Retry-After``, never a valid caller (docs/API.md,
"Rate limits").

Failed authentications (401) are counted per client address, refused lease requests (403) per client
address and per repository, in fixed windows of one shared counter family. Credentials are verified first:
the limit only turns an answer that would have been 401 or 403 into 429 once a key reached it, so a request
whose credential verifies (and a lease request that would be granted) is always served, and many CI jobs
behind one NAT address are not locked out by one broken job. The count is per process: N replicas admit at
most N times the limit.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Flask, Response, current_app, request

from app.clock import Clock
from app.decision.reasons import TOO_MANY_FAILURES, Reason
from app.errors import AppError, problem

MAX_CLIENTS = 10_000  # windows remembered at once; the oldest go first
EXTENSION = "transom.limiter"


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
            return self._wait(client, now)

    def record_failure(self, client: str) -> None:
        now = self._clock.now()
        with self._lock:
            self._count(client, now)

    def hold_or_count(self, keys: Sequence[str]) -> int | None:
        """One failure of every key in ``keys``, or, when any of them already reached the limit, the seconds
        to wait (the longest) and nothing counted. Atomic, so parallel failures cannot overshoot."""
        now = self._clock.now()
        with self._lock:
            waits = [wait for key in keys if (wait := self._wait(key, now)) is not None]
            if waits:
                return max(waits)
            for key in keys:
                self._count(key, now)
            return None

    def _wait(self, key: str, now: datetime) -> int | None:
        window = self._current(key, now)
        if window is None or window.failures < self._limit:
            return None
        return max(1, math.ceil((window.start + self._window - now).total_seconds()))

    def _count(self, key: str, now: datetime) -> None:
        window = self._current(key, now)
        if window is None:
            window = self._windows[key] = _Window(now)
            while len(self._windows) > self._max_clients:
                self._windows.popitem(last=False)
        window.failures += 1

    def _current(self, key: str, now: datetime) -> _Window | None:
        window = self._windows.get(key)
        if window is not None and now >= window.start + self._window:
            del self._windows[key]
            return None
        return window


# --- keys ----------------------------------------------------------------------------------------------


def address_key(address: str) -> str:
    return f"address {address}"


def repository_key(issuer: str, repository: str) -> str:
    return f"repository {issuer} {repository}"


# --- wiring into the app ------------------------------------------------------------------------------

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})  # probes and scrapers are never held back


def install(app: Flask, limiter: FailureLimiter) -> None:
    """Count every 401 the app answers, after verification; past the limit the 401 becomes a 429. Register
    it after the factory's own ``after_request`` (Flask runs them last-registered first), so the 429 still
    gets the request id and the common headers."""

    def count_failure(response: Response) -> Response:
        if response.status_code != 401 or request.path in EXEMPT_PATHS:
            return response
        wait = limiter.hold_or_count([address_key(client_address())])
        if wait is None:
            return response
        return _response(TooManyFailures(wait))

    app.extensions[EXTENSION] = limiter
    app.after_request(count_failure)


def app_limiter() -> FailureLimiter | None:
    """The app's limiter; None when ``TRANSOM_AUTH_FAILURES_PER_MINUTE`` is 0."""
    limiter: FailureLimiter | None = current_app.extensions.get(EXTENSION)
    return limiter


def client_address() -> str:
    """The client's address (the one the nearest trusted proxy saw, per ``TRANSOM_TRUSTED_PROXY_HOPS``)."""
    return request.remote_addr or "unknown"


class TooManyFailures(AppError):
    status, type_, title = 429, "rate-limited", "Too many failed or refused requests"

    def __init__(self, retry_after: int, *, refused: bool = False) -> None:
        what = "was refused" if refused else "failed to authenticate"
        super().__init__(
            f"This client {what} too often; retry after {retry_after} s.",
            reasons=[Reason(TOO_MANY_FAILURES, f"too many failed or refused requests; wait {retry_after} s")],
            headers={"Retry-After": str(retry_after)},
        )


def _response(error: AppError) -> Response:
    return problem(
        error.status, error.title, error.detail, error.type_, reasons=error.reasons, headers=error.headers
    )
