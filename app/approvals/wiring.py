"""What views need of the approvals after a configuration change."""

from __future__ import annotations

from app.approvals.service import ApprovalService
from app.config_snapshot.generation import read_generation
from app.config_snapshot.snapshot import ConfigSnapshot
from app.request_context import db_session, runtime


def end_ungranted_requests(*, policies: set[str] | None) -> int:
    """End the open approval requests (under ``policies``; None: all) that the configuration as committed
    now no longer grants (docs/API.md: ``expired``, reason ``policy_changed``); committed."""
    session = db_session()
    rt = runtime()
    config = ConfigSnapshot.load(session, read_generation(session))
    service = ApprovalService(session, rt.clock, notify=rt.settings.notify_webhook_url is not None)
    ended = service.end_ungranted(config.policy, config.calendar.facts, policies=policies)
    session.commit()
    return ended
