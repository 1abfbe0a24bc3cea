"""How the OpenAPI document describes a window's or a freeze's ``schedule`` (docs/API.md, "Windows").

The calendar core (``app.decision.schedules``) validates a schedule and names the bad field; marshmallow only
checks that it is an object. These JSON Schemas say the same rules to clients, as a ``oneOf`` keyed on
``type``; they must never refuse what the core accepts (the fuzz tests send what they call invalid).
"""

from __future__ import annotations

from typing import Any

from app.decision.schedules import DAY_NAMES
from app.schemas import DURATION_DOC

_HHMM = {
    "type": "string",
    "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$",
    "description": "Local wall-clock time HH:MM (00:00 to 23:59) in the window's timezone",
    "examples": ["09:00"],
}
_INSTANT = {
    "type": "string",
    "format": "date-time",
    "description": "RFC 3339 with an offset; answered in UTC with Z",
    "examples": ["2026-12-24T08:00:00+01:00"],
}


def _kind(name: str, description: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "properties": {"type": {"type": "string", "enum": [name]}, **properties},
        "required": ["type", *properties],
        "additionalProperties": False,
    }


SCHEDULE_COMPONENTS: dict[str, dict[str, Any]] = {
    "WeeklySchedule": _kind(
        "weekly",
        "Open on the given days from start to end; an end at or before start crosses midnight.",
        {
            "days": {
                "type": "array",
                "items": {"type": "string", "enum": list(DAY_NAMES)},
                "minItems": 1,
                "maxItems": len(DAY_NAMES),
                "uniqueItems": True,
                "examples": [["mon", "tue", "wed", "thu"]],
            },
            "start": _HHMM,
            "end": _HHMM,
        },
    ),
    "CronSchedule": _kind(
        "cron",
        "Open for `duration` from every time the cron expression fires, in the window's timezone.",
        {
            "cron": {
                "type": "string",
                "description": "Five fields: minute hour day-of-month month day-of-week (no H or R)",
                "examples": ["0 22 * * fri"],
            },
            "duration": {
                **DURATION_DOC,
                "description": "More than 0 and at most 7 days. " + DURATION_DOC["description"],
            },
        },
    ),
    "OnceSchedule": _kind("once", "Open once, from start until end.", {"start": _INSTANT, "end": _INSTANT}),
    "AlwaysSchedule": _kind("always", "The built-in window `always` (never sent by a client).", {}),
}


def _one_of(*names: str) -> dict[str, Any]:
    return {"oneOf": [{"$ref": f"#/components/schemas/{name}"} for name in names]}


# Field metadata: what a client sends, and what the broker answers (which adds the built-in `always`).
SCHEDULE_REQUEST_DOC = {
    **_one_of("WeeklySchedule", "CronSchedule", "OnceSchedule"),
    "description": "One of three types, told apart by `type`: weekly, cron or once",
}
SCHEDULE_RESPONSE_DOC = {
    **_one_of("WeeklySchedule", "CronSchedule", "OnceSchedule", "AlwaysSchedule"),
    "description": "As sent, normalised: durations in seconds, instants in UTC",
}
