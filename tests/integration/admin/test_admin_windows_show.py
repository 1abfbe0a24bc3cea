"""`transom windows show`: the week ahead drawn as text, readable without colour."""

from __future__ import annotations

from tests.integration.admin.conftest import Transom
from tests.support.broker import Broker

OPEN, FROZEN, CLOSED = "█", "x", "·"


def _bars(output: str) -> dict[str, str]:
    """Day label -> its 48-cell bar."""
    return {
        line[:14]: line[16:64]
        for line in output.splitlines()
        if line[:3] in {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}
    }


def _setup(broker: Broker) -> None:
    broker.create(
        "/v1/windows",
        {"name": "weekdays", "timezone": "Europe/Berlin",
         "schedule": {"type": "weekly", "days": ["mon", "tue", "wed"], "start": "09:00", "end": "16:00"}},
    )  # fmt: skip
    broker.admin("PUT", "/v1/policies/deploy-prod", {
        "issuer": "github", "secrets": ["prod-db-static"], "repositories": ["acme/payments"],
        "branches": ["main"], "windows": ["weekdays"], "max_ttl": "1h",
    })  # fmt: skip
    broker.create(
        "/v1/freezes",
        {"name": "tuesday-afternoon", "timezone": "Europe/Berlin", "policies": ["deploy-prod"],
         "schedule": {"type": "once", "start": "2030-01-08T12:00:00+01:00",
                      "end": "2030-01-09T00:00:00+01:00"}},
    )  # fmt: skip


def test_a_week_with_a_weekly_window_and_a_freeze(transom: Transom, broker: Broker) -> None:
    _setup(broker)
    result = transom(
        "windows", "show", "--policy", "deploy-prod", "--from", "2030-01-07", "--tz", "Europe/Berlin"
    )
    assert result.exit_code == 0, result.output
    assert "times in Europe/Berlin" in result.output
    assert "deploy-prod  open 17h00m in these 7 day(s)" in result.output  # 7 + 3 + 7 hours
    bars = _bars(result.output)
    assert list(bars) == [
        "Mon 2030-01-07", "Tue 2030-01-08", "Wed 2030-01-09", "Thu 2030-01-10",
        "Fri 2030-01-11", "Sat 2030-01-12", "Sun 2030-01-13",
    ]  # fmt: skip
    workday = CLOSED * 18 + OPEN * 14 + CLOSED * 16  # 09:00-16:00 local
    assert bars["Mon 2030-01-07"] == workday
    assert bars["Tue 2030-01-08"] == CLOSED * 18 + OPEN * 6 + FROZEN * 24  # frozen from 12:00 to midnight
    assert bars["Wed 2030-01-09"] == workday
    assert all(bars[day] == CLOSED * 48 for day in list(bars)[3:])
    assert "^ now (" not in result.output  # 2030 is not now

    in_utc = transom("windows", "show", "--policy", "deploy-prod", "--from", "2030-01-07", "--days", "1")
    assert in_utc.exit_code == 0, in_utc.output
    # Berlin is UTC+1 in January: the same window is 08:00-15:00 UTC.
    assert _bars(in_utc.output) == {"Mon 2030-01-07": CLOSED * 16 + OPEN * 14 + CLOSED * 18}


def test_now_is_marked_on_todays_row(transom: Transom, broker: Broker) -> None:
    result = transom("windows", "show", "--days", "2")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1:3] == ["", "deploy-prod  open 48h00m in these 2 day(s)"]  # the policy uses `always`
    marker = next(i for i, line in enumerate(lines) if "^ now (" in line)
    assert lines[marker - 1][:3] in {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}
    assert set(_bars(result.output).values()) == {OPEN * 48}


def test_an_unknown_policy_or_zone_is_refused(transom: Transom, broker: Broker) -> None:
    unknown = transom("windows", "show", "--policy", "nope")
    assert unknown.exit_code == 1 and "no policy named 'nope'" in unknown.output
    zone = transom("windows", "show", "--tz", "Mars/Olympus")
    assert zone.exit_code == 2 and "unknown time zone" in zone.output
