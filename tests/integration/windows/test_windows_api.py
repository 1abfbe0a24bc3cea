"""Windows and freezes over the API: clear 400s, the built-in window, occurrences and the week view."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.broker import Broker

WEEKDAYS = {"type": "weekly", "days": ["mon", "tue", "wed", "thu"], "start": "09:00", "end": "16:00"}


def _window(name: str = "weekday-deploys", **overrides: Any) -> dict[str, Any]:
    return {"name": name, "timezone": "Europe/Berlin", "schedule": WEEKDAYS, **overrides}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_window(timezone="Mars/Olympus"), "timezone"),
        (_window(schedule={**WEEKDAYS, "start": "25:00"}), "schedule.start"),
        (_window(schedule={**WEEKDAYS, "days": ["funday"]}), "schedule.days"),
        (_window(schedule={"type": "cron", "cron": "61 * * * *", "duration": "1h"}), "schedule.cron"),
        (_window(schedule={"type": "cron", "cron": "0 22 * * 5", "duration": "0s"}), "schedule.duration"),
        (
            _window(
                schedule={
                    "type": "once",
                    "start": "2026-12-24T12:00:00+01:00",
                    "end": "2026-12-24T08:00:00+01:00",
                }
            ),
            "schedule.end",
        ),
        (
            _window(schedule={"type": "once", "start": "2026-12-24T08:00:00", "end": "2026-12-24T12:00:00"}),
            "schedule.start",
        ),
        (_window(schedule={"type": "hourly"}), "schedule.type"),
        (_window(name="Not A Name"), "name"),
    ],
)
def test_invalid_windows_are_400_naming_the_field(broker: Broker, body: dict[str, Any], field: str) -> None:
    response = broker.admin("POST", "/v1/windows", body)
    assert response.status_code == 400, response.get_json()
    assert field in response.get_json()["errors"]


def test_window_round_trip_and_conflicts(broker: Broker) -> None:
    created = broker.create("/v1/windows", _window())
    assert created["schedule"] == WEEKDAYS and created["timezone"] == "Europe/Berlin"
    assert broker.admin("POST", "/v1/windows", _window()).status_code == 409
    assert broker.admin("GET", "/v1/windows/weekday-deploys").get_json()["schedule"] == WEEKDAYS
    replaced = broker.admin("PUT", "/v1/windows/weekday-deploys", _window(timezone="UTC"))
    assert replaced.status_code == 200 and replaced.get_json()["timezone"] == "UTC"
    renamed = broker.admin("PUT", "/v1/windows/weekday-deploys", _window(name="other"))
    assert renamed.status_code == 400

    broker.admin("PUT", "/v1/policies/deploy-prod", {**_policy(), "windows": ["weekday-deploys"]})
    in_use = broker.admin("DELETE", "/v1/windows/weekday-deploys")
    assert in_use.status_code == 409 and "deploy-prod" in in_use.get_json()["detail"]


def test_the_always_window_is_built_in(broker: Broker) -> None:
    assert broker.admin("GET", "/v1/windows/always").get_json()["builtin"] is True
    assert broker.admin("POST", "/v1/windows", _window(name="always")).status_code == 409
    assert broker.admin("PUT", "/v1/windows/always", _window(name="always")).status_code == 409
    assert broker.admin("DELETE", "/v1/windows/always").status_code == 409


def test_occurrences_keep_local_wall_clock_across_dst(broker: Broker) -> None:
    broker.create("/v1/windows", _window(schedule={**WEEKDAYS, "days": ["mon"]}))
    winter = broker.admin(
        "GET", "/v1/windows/weekday-deploys/occurrences?from=2027-01-04T00:00:00Z&to=2027-01-05T00:00:00Z"
    ).get_json()["items"]
    summer = broker.admin(
        "GET", "/v1/windows/weekday-deploys/occurrences?from=2027-07-05T00:00:00Z&to=2027-07-06T00:00:00Z"
    ).get_json()["items"]
    assert winter == [{"start": "2027-01-04T08:00:00Z", "end": "2027-01-04T15:00:00Z"}]
    assert summer == [{"start": "2027-07-05T07:00:00Z", "end": "2027-07-05T14:00:00Z"}]


@pytest.mark.parametrize(
    "query",
    [
        "from=2027-01-01T00:00:00Z&to=2028-01-03T00:00:00Z",  # more than 366 days
        "from=2027-01-02T00:00:00Z&to=2027-01-01T00:00:00Z",  # backwards
        "from=yesterday&to=2027-01-01T00:00:00Z",
        "to=2027-01-01T00:00:00Z",
    ],
)
def test_occurrence_ranges_are_validated(broker: Broker, query: str) -> None:
    response = broker.admin("GET", f"/v1/windows/always/occurrences?{query}")
    assert response.status_code == 400


def test_freezes_validate_policies_and_block_policy_deletion(broker: Broker) -> None:
    body = {
        "name": "year-end",
        "timezone": "Europe/Berlin",
        "schedule": {
            "type": "once",
            "start": "2027-12-20T00:00:00+01:00",
            "end": "2028-01-04T00:00:00+01:00",
        },
        "policies": ["deploy-prod"],
        "reason": "year-end change freeze",
    }
    assert broker.admin("POST", "/v1/freezes", {**body, "policies": ["ghost"]}).status_code == 400
    created = broker.create("/v1/freezes", body)
    assert created["reason"] == "year-end change freeze"
    assert broker.admin("DELETE", "/v1/policies/deploy-prod").status_code == 409
    occurrences = broker.admin(
        "GET", "/v1/freezes/year-end/occurrences?from=2027-12-01T00:00:00Z&to=2028-01-31T00:00:00Z"
    ).get_json()["items"]
    assert occurrences == [{"start": "2027-12-19T23:00:00Z", "end": "2028-01-03T23:00:00Z"}]


def test_calendar_shows_open_time_per_policy(broker: Broker) -> None:
    broker.create("/v1/windows", _window(schedule={**WEEKDAYS, "days": ["mon"]}))
    broker.admin("PUT", "/v1/policies/deploy-prod", {**_policy(), "windows": ["weekday-deploys"]})
    broker.create(
        "/v1/freezes",
        {
            "name": "lunch",
            "timezone": "Europe/Berlin",
            "schedule": {
                "type": "once",
                "start": "2027-01-04T12:00:00+01:00",
                "end": "2027-01-04T13:00:00+01:00",
            },
        },
    )
    week = broker.admin("GET", "/v1/windows/calendar?from=2027-01-04T00:00:00Z&days=7&policy=deploy-prod")
    assert week.status_code == 200
    body = week.get_json()
    assert [p["policy"] for p in body["policies"]] == ["deploy-prod"]
    assert body["policies"][0]["open"] == [
        {"start": "2027-01-04T08:00:00Z", "end": "2027-01-04T11:00:00Z"},
        {"start": "2027-01-04T12:00:00Z", "end": "2027-01-04T15:00:00Z"},
    ]
    assert broker.admin("GET", "/v1/windows/calendar?policy=ghost").status_code == 404


def _policy() -> dict[str, Any]:
    return {
        "name": "deploy-prod",
        "issuer": "github",
        "secrets": ["prod-db-static", "prod-vault-token"],
        "repositories": ["acme/payments"],
        "branches": ["main", "release/*"],
        "windows": ["always"],
        "max_ttl": "1h",
    }
