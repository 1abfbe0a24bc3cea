"""Writing notifications: one outbox row in the caller's transaction, so a notification exists exactly when
the change it announces committed. Delivery is the worker's (:mod:`app.notifications.delivery`), never the
request's: a slow or failing receiver cannot hold up a lease or an approval."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from app.clock import Clock
from app.notifications.models import Notification


def enqueue(session: Session, clock: Clock, event: str, text: str, fields: Mapping[str, Any]) -> Notification:
    """Queue ``{"text": text, "event": event, **fields}`` (Slack-compatible: ``text`` is what a Slack
    channel shows). ``fields`` must hold no secret value or token: callers pass identities and names only."""
    now = clock.now()
    row = Notification(
        event=event,
        payload={"text": text, "event": event, **fields},
        created_at=now,
        attempts=0,
        next_attempt_at=now,
    )
    session.add(row)
    return row
