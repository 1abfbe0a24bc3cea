"""Delivering queued notifications to the webhook (TRANSOM_NOTIFY_WEBHOOK_URL), from the worker.

At least once: a notification is claimed (its next attempt moved past the time a POST may take) and
committed before the POST, so other workers leave it alone and no lock is held across the network; it is
marked delivered after a 2xx. A failure retries with exponential backoff, capped, and gives up after a day.
The body is the stored payload: names and identities, never a secret or a token (``outbox``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from app.approvals import metrics
from app.clock import Clock
from app.db import transaction
from app.notifications.models import Notification

log = logging.getLogger(__name__)

POST_TIMEOUT = 5.0  # seconds
CLAIM_FOR = timedelta(seconds=30)  # longer than a POST may take
FIRST_RETRY = timedelta(seconds=1)
MAX_RETRY = timedelta(minutes=10)
GIVE_UP_AFTER = timedelta(days=1)
KEEP_DELIVERED = timedelta(days=7)
BATCH = 50

Post = Callable[[str, Mapping[str, Any]], int]  # (url, body) -> HTTP status; raises on no answer


def post_json(url: str, body: Mapping[str, Any]) -> int:
    response = requests.post(url, json=body, timeout=POST_TIMEOUT, allow_redirects=False)
    return response.status_code


def retry_delay(attempts: int) -> timedelta:
    """1 s, 2 s, 4 s, ... after each failed attempt, at most ten minutes."""
    doubling: int = 2 ** min(max(attempts - 1, 0), 20)
    return min(MAX_RETRY, FIRST_RETRY * doubling)


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    delivered: int = 0
    retrying: int = 0
    given_up: int = 0


def deliver_due(
    sessions: sessionmaker[Session], clock: Clock, url: str | None, *, post: Post = post_json
) -> DeliveryResult:
    """POST every notification that is due; ``url`` None: notifications are off, nothing is sent."""
    if url is None:
        return DeliveryResult()
    claimed = _claim(sessions, clock.now())
    outcomes = [
        _deliver_one(sessions, clock, url, row_id, event, payload, post) for row_id, event, payload in claimed
    ]
    return DeliveryResult(
        delivered=outcomes.count("delivered"),
        retrying=outcomes.count("retrying"),
        given_up=outcomes.count("given_up"),
    )


def _claim(sessions: sessionmaker[Session], now: datetime) -> list[tuple[int, str, dict[str, Any]]]:
    with transaction(sessions) as session:
        query = (
            select(Notification)
            .where(Notification.delivered_at.is_(None), Notification.given_up_at.is_(None))
            .where(Notification.next_attempt_at <= now)
            .order_by(Notification.id)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        )
        rows = list(session.scalars(query))
        for row in rows:
            row.next_attempt_at = now + CLAIM_FOR
        return [(row.id, row.event, dict(row.payload)) for row in rows]


def _deliver_one(
    sessions: sessionmaker[Session],
    clock: Clock,
    url: str,
    row_id: int,
    event: str,
    payload: dict[str, Any],
    post: Post,
) -> str:
    error: str | None
    try:
        status = post(url, payload)
        error = None if 200 <= status < 300 else f"http_{status}"
    except requests.RequestException as exc:
        error = type(exc).__name__  # the class only: a message may carry the URL, itself a credential
    now = clock.now()
    with transaction(sessions) as session:
        row = session.get(Notification, row_id)
        if row is None:
            return "given_up"
        row.attempts += 1
        if error is None:
            row.delivered_at = now
            outcome = "delivered"
        elif now - row.created_at >= GIVE_UP_AFTER:
            row.given_up_at, row.last_error = now, error
            outcome = "given_up"
            log.warning(
                "notification %d (%s) given up after %d attempts: %s", row_id, event, row.attempts, error
            )
        else:
            row.next_attempt_at, row.last_error = now + retry_delay(row.attempts), error
            outcome = "retrying"
    metrics.notifications().labels(event=event, outcome=outcome).inc()
    return outcome


def purge_delivered(sessions: sessionmaker[Session], clock: Clock) -> int:
    """Forget notifications delivered or given up on a week ago."""
    cutoff = clock.now() - KEEP_DELIVERED
    with transaction(sessions) as session:
        done = delete(Notification).where(
            (Notification.delivered_at < cutoff) | (Notification.given_up_at < cutoff)
        )
        return int(session.execute(done).rowcount)  # type: ignore[attr-defined]
