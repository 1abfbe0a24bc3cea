"""The approvals' scheduler jobs: end requests that timed out, deliver notifications (docs/API.md).

Registered by ``schedule`` in one call from ``app/scheduler/runner.py``; each job is a plain function of its
dependencies, an idempotent sweep over database state, safe to run in many workers at once.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.approvals.service import ApprovalService
from app.clock import Clock
from app.db import transaction
from app.notifications import delivery
from app.runtime import Runtime

log = logging.getLogger(__name__)

INTERVALS = {  # seconds
    "expire_approvals": 1,  # a request ends within a second of its timeout
    "deliver_notifications": 1,  # each notification waits until its own next attempt is due
    "purge_notifications": 3600,
}


def expire_due_approvals(sessions: sessionmaker[Session], clock: Clock, *, notify: bool) -> int:
    """End the open requests past their ``expires_at`` (``expired``, reason ``timeout``)."""
    with transaction(sessions) as session:
        ended = ApprovalService(session, clock, notify=notify).expire_due()
    if ended:
        log.info("%d approval request(s) expired", ended)
    return ended


def schedule(scheduler: Any, rt: Runtime) -> None:
    """Add the approvals' jobs to ``scheduler`` (an APScheduler 3 scheduler); they start with it."""
    url = rt.settings.notify_webhook_url
    jobs = {
        "expire_approvals": partial(expire_due_approvals, rt.sessions, rt.clock, notify=url is not None),
        "deliver_notifications": partial(delivery.deliver_due, rt.sessions, rt.clock, url),
        "purge_notifications": partial(delivery.purge_delivered, rt.sessions, rt.clock),
    }
    now = datetime.now(UTC)
    for name, job in jobs.items():
        scheduler.add_job(
            job, "interval", seconds=INTERVALS[name], id=name, name=name.replace("_", " "), next_run_time=now
        )
