"""Carrying out an apply plan against the broker, one write at a time, stopping at the first refusal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import click

from app.admin.api_client import ApiClient, ApiError
from app.admin.config_file import KINDS
from app.admin.plan import Change, Current, Plan

PAST = {"create": "created", "update": "updated", "delete": "deleted"}


def fetch_current(client: ApiClient) -> Current:
    """Every configuration object on the server, by kind and name."""
    return {kind: {obj["name"]: obj for obj in client.list_all(f"/v1/{kind}")} for kind in KINDS}


class ApplyStopped(click.ClickException):
    def __init__(self, change: Change, done: int, total: int, error: ApiError) -> None:
        super().__init__(
            f"the broker refused to {change.action} {change.label}; stopped there "
            f"({done} of {total} change(s) applied, {total - done} not applied):\n{error.format_message()}"
        )


def execute(client: ApiClient, plan: Plan, echo: Callable[[str], Any]) -> int:
    """Apply the plan's changes in order; the number applied. ``ApplyStopped`` at the first refusal."""
    for done, change in enumerate(plan.changes):
        try:
            _write(client, change)
        except ApiError as exc:
            raise ApplyStopped(change, done, len(plan.changes), exc) from None
        echo(f"{PAST[change.action]} {change.label}")
    return len(plan.changes)


def _write(client: ApiClient, change: Change) -> None:
    path = f"/v1/{change.kind}"
    if change.action == "create":
        client.post(path, change.body)
    elif change.action == "update":
        client.put(f"{path}/{quote(change.name, safe='')}", change.body)
    else:
        client.delete(f"{path}/{quote(change.name, safe='')}")
