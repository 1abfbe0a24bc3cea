"""Refused lease requests: held back past the limit, and a burst of identical ones recorded as one event.

GitHub's issuer is shared by every repository, so anyone can present a verified token and be refused; each
refusal used to take the ledger's lock and add an event (docs/API.md, "Rate limits"). Two defences:

- Limit: a refusal counts against the client address and the token's repository in the app's
  :class:`~app.ratelimit.FailureLimiter`; past ``TRANSOM_AUTH_FAILURES_PER_MINUTE`` it is answered 429
  instead of 403, with no event. A request that would be granted never gets here, so it is served.
- Bursts: refusals are identical when their action, issuer, repository, secret, reason codes and whole
  identity are. The first one of a window is written at once, as before (``details.count`` 1). The identical
  ones within :data:`BURST_WINDOW` after it are only counted; once the window has closed, one summary event
  is appended with ``details.count`` (the refusals after the first), ``first_at``, ``last_at`` and
  ``first_event`` (the id of the event written at once). A summary is written by the first request of any
  kind after its window closed (see :func:`flush_due`).

What may be lost: the counts live in the process. If the process stops before a summary is written (a crash,
a restart, a replica scaled away), that window's count after the first event is lost; the first event of
every burst is always in the ledger, so a burst is never invisible, only its size.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from flask import Flask, current_app, request
from sqlalchemy.orm import Session, sessionmaker

from app.audit.ledger import Ledger
from app.clock import Clock
from app.db import transaction
from app.identity.workload import WorkloadIdentity
from app.instants import format_instant
from app.ratelimit import EXEMPT_PATHS, FailureLimiter, TooManyFailures, address_key, repository_key

log = logging.getLogger(__name__)

BURST_WINDOW = timedelta(minutes=1)
MAX_BURSTS = 10_000  # open bursts remembered at once; past it the oldest is closed (summarised) early
EXTENSION = "transom.denial_bursts"


# --- bursts (pure, apart from the lock) -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Summary:
    """The identical refusals after the first of a burst, to append as one event."""

    action: str
    event: Mapping[str, Any]  # the first refusal's Ledger.append arguments
    first_event: int | None
    count: int
    first_at: datetime
    last_at: datetime

    def append_to(self, ledger: Ledger) -> None:
        details = {
            **self.event.get("details", {}),
            "count": self.count,
            "first_at": format_instant(self.first_at),
            "last_at": format_instant(self.last_at),
            "first_event": self.first_event,
        }
        ledger.append(self.action, **{**self.event, "details": details})


@dataclass(slots=True)
class _Burst:
    action: str
    event: Mapping[str, Any]
    opened_at: datetime
    first_event: int | None = None
    count: int = 0  # refusals after the first
    first_at: datetime | None = None
    last_at: datetime | None = None

    def summary(self) -> Summary | None:
        if not self.count or self.first_at is None or self.last_at is None:
            return None
        return Summary(self.action, self.event, self.first_event, self.count, self.first_at, self.last_at)


@dataclass
class DenialBursts:
    """The open bursts of one process, shared by its threads."""

    window: timedelta = BURST_WINDOW
    max_bursts: int = MAX_BURSTS
    _open: OrderedDict[str, _Burst] = field(default_factory=OrderedDict)
    _closed: list[Summary] = field(default_factory=list)  # closed early (memory bound) or put back
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, key: str, action: str, event: Mapping[str, Any], now: datetime) -> bool:
        """Count one refusal; True when it opens a burst and is to be written at once."""
        with self._lock:
            burst = self._open.get(key)
            if burst is not None and now < burst.opened_at + self.window:
                burst.count += 1
                burst.first_at = burst.first_at or now
                burst.last_at = now
                return False
            if burst is not None:
                self._close(key)
            self._open[key] = _Burst(action, event, now)
            while len(self._open) > self.max_bursts:
                self._close(next(iter(self._open)))
            return True

    def opened(self, key: str, event_id: int) -> None:
        """The id of the event written for the refusal that opened the burst at ``key``."""
        with self._lock:
            burst = self._open.get(key)
            if burst is not None:
                burst.first_event = event_id

    def take_due(self, now: datetime) -> list[Summary]:
        """The summaries whose window has closed (removed: write them, or :meth:`put_back` them)."""
        with self._lock:
            # Bursts are kept in the order they opened: the due ones are at the front.
            while self._open and now >= next(iter(self._open.values())).opened_at + self.window:
                self._close(next(iter(self._open)))
            due, self._closed = self._closed, []
            return due

    def put_back(self, summaries: list[Summary]) -> None:
        with self._lock:
            self._closed.extend(summaries)

    def _close(self, key: str) -> None:
        summary = self._open.pop(key).summary()
        if summary is not None:
            self._closed.append(summary)


def burst_key(action: str, identity: WorkloadIdentity, secret: str | None, reason_codes: list[str]) -> str:
    """Identical refusals share this: the action, the secret, the reason codes and the whole identity (which
    holds issuer and repository). Not the reason messages, which may name changing instants."""
    material = [action, secret, sorted(set(reason_codes)), identity.to_dict()]
    encoded = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()


# --- the gate the lease service calls ----------------------------------------------------------------------


class RefusalGate(Protocol):
    def record(self, ledger: Ledger, identity: WorkloadIdentity, action: str, **event: Any) -> None:
        """Record a refused request like ``ledger.append(action, **event)``, or raise 429 past the limit."""
        ...


class RecordEveryRefusal:
    """Outside a request (jobs, tests of the service): every refusal is its own event."""

    def record(self, ledger: Ledger, identity: WorkloadIdentity, action: str, **event: Any) -> None:
        ledger.append(action, **event)


EVERY_REFUSAL = RecordEveryRefusal()


@dataclass(frozen=True, slots=True)
class Refusals:
    """The refusals of one request: its client address, the app's limiter (None: off) and bursts."""

    address: str
    limiter: FailureLimiter | None
    bursts: DenialBursts
    clock: Clock

    def record(self, ledger: Ledger, identity: WorkloadIdentity, action: str, **event: Any) -> None:
        self._hold_back(identity)
        now = self.clock.now()
        codes = [reason.code for reason in event.get("reasons", ())]
        key = burst_key(action, identity, event.get("secret"), codes)
        if self.bursts.note(key, action, event, now):
            details = {**event.get("details", {}), "count": 1}
            written = ledger.append(action, **{**event, "details": details})
            ledger.flush()
            self.bursts.opened(key, written.id)

    def _hold_back(self, identity: WorkloadIdentity) -> None:
        if self.limiter is None:
            return
        keys = [address_key(self.address)]
        if identity.repository:
            keys.append(repository_key(identity.issuer, identity.repository))
        wait = self.limiter.hold_or_count(keys)
        if wait is not None:
            raise TooManyFailures(wait, refused=True)


# --- wiring into the app ------------------------------------------------------------------------------


def install(app: Flask, bursts: DenialBursts, sessions: sessionmaker[Session], clock: Clock) -> None:
    """Keep the process's bursts on the app, and write the summaries that came due before each request."""
    app.extensions[EXTENSION] = bursts

    def flush() -> None:
        if request.path not in EXEMPT_PATHS:
            flush_due(bursts, sessions, clock)

    app.before_request(flush)


def request_refusals(address: str, limiter: FailureLimiter | None, clock: Clock) -> Refusals:
    bursts: DenialBursts = current_app.extensions[EXTENSION]
    return Refusals(address, limiter, bursts, clock)


def flush_due(bursts: DenialBursts, sessions: sessionmaker[Session], clock: Clock) -> None:
    """Append the summaries whose window closed; on a database failure keep them for the next request
    (the request itself is not failed for it)."""
    due = bursts.take_due(clock.now())
    if not due:
        return
    try:
        with transaction(sessions) as session:
            ledger = Ledger(session, clock)
            for summary in due:
                summary.append_to(ledger)
    except Exception:  # any failure: keep the counts, log, and serve the request anyway
        log.warning("could not write %d refusal burst summaries; kept for the next request", len(due))
        bursts.put_back(due)
