"""Windows and freezes per policy, drawn as a picture, with now and the active leases on it.

It opens on today (from 00:00 UTC) and the next seven days, so what is coming is always in view, whatever
the weekday; earlier and later pages step by the number of days shown.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from flask import render_template, request, url_for

from app.leases import queries as lease_queries
from app.leases.models import Lease, LeaseStatus
from app.request_context import db_session, ledger, runtime
from app.web.blueprint import bp
from app.web.calendar_picture import LeaseBar, layout
from app.web.forms import CalendarForm
from app.web.login import reader_page
from app.windows.service import WindowService

MAX_LEASES_DRAWN = 500


def day_start(now: datetime) -> datetime:
    """00:00 UTC of the day containing ``now``."""
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _bar(lease: Lease) -> LeaseBar:
    label = f"{lease.id} · {lease.secret} · {lease.repository or '?'}@{lease.branch or '?'}"
    href = url_for("web.lease", lease_id=lease.id)
    return LeaseBar(lease.id, lease.policy, lease.issued_at, lease.expires_at, label, href)


@bp.get("/calendar")
@reader_page
def calendar() -> str:
    form = CalendarForm().load(request.args)
    now = runtime().clock.now()
    chosen = form.get("start")
    start = datetime.combine(chosen, time(), tzinfo=UTC) if chosen else day_start(now)
    days: int = form["days"]
    policy = form.get("policy")
    week = WindowService(db_session(), runtime().clock, ledger()).week(start, days, policy)
    filters = {"status": LeaseStatus.ACTIVE, "policy": policy}
    active = lease_queries.page(db_session(), filters, limit=MAX_LEASES_DRAWN, after=None)
    picture = layout(week, [_bar(lease) for lease in active], now)
    step = timedelta(days=days)
    return render_template(
        "web/calendar.html",
        picture=picture,
        week=week,
        days=days,
        policy=policy or "",
        active=active,
        previous=(start - step).date().isoformat(),
        following=(start + step).date().isoformat(),
        today=day_start(now).date().isoformat(),
    )
