"""`transom windows show`: the week ahead of each policy, drawn in the terminal."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import click
from rich.text import Text

from app.admin.api_client import ApiClient, broker_options
from app.admin.calendar_view import legend, local_days, policy_rows, range_for
from app.admin.terminal import console
from app.clock import SystemClock
from app.decision.windows import ScheduleError, validate_timezone
from app.instants import format_instant

MAX_DAYS = 30  # the calendar API serves up to 31 days; one is asked for on top (see range_for)


def _zone(_ctx: click.Context, _param: click.Parameter, value: str) -> ZoneInfo:
    try:
        return validate_timezone(value)
    except ScheduleError as exc:
        raise click.BadParameter(exc.message) from None


@click.group()
def windows() -> None:
    """Deployment windows and freezes."""


@windows.command("show")
@broker_options
@click.option("--policy", default=None, help="Only this policy (default: every policy).")
@click.option("--days", type=click.IntRange(1, MAX_DAYS), default=7, show_default=True)
@click.option(
    "--tz", "zone", default="UTC", show_default=True, callback=_zone, help="Draw the days in this IANA zone."
)
@click.option(
    "--from",
    "first",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="First day (default: today).",
)
def show(client: ApiClient, policy: str | None, days: int, zone: ZoneInfo, first: datetime | None) -> None:
    """When each policy can deploy: one row per day, 48 half-hour cells, freezes marked, now pointed at."""
    now = SystemClock().now()
    shown = local_days((first.date() if first else now.astimezone(zone).date()), days)
    start, asked = range_for(shown, zone)
    calendar = client.get(
        "/v1/windows/calendar", {"from": format_instant(start), "days": asked, "policy": policy}
    )
    out = console()
    out.print(legend(zone.key), soft_wrap=True)
    if not calendar["policies"]:
        out.print("no policies")
    for week in calendar["policies"]:
        out.print(Text(""))
        for line in policy_rows(week, shown, zone, now.astimezone(UTC)):
            out.print(line, soft_wrap=True)
