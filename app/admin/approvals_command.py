"""`transom approvals list|show|approve|deny`: the approvals API for people (docs/API.md)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import click
from rich.table import Table

from app.admin.api_client import ApiClient, broker_options
from app.admin.leases_command import _short
from app.admin.terminal import console

STATUSES = ("pending", "approved", "denied", "expired", "used")  # docs/API.md


@click.group()
def approvals() -> None:
    """Approval requests: list and show them; approve or deny one (an admin or approver token)."""


def _path(request_id: str, action: str = "") -> str:
    return f"/v1/approvals/{quote(request_id, safe='')}{action}"


@approvals.command("list")
@broker_options
@click.option("--status", type=click.Choice(STATUSES), default="pending", show_default=True)
@click.option("--policy", default=None)
@click.option("--secret", default=None)
@click.option("--repository", default=None)
@click.option("--format", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True)
@click.option("--limit", type=click.IntRange(min=0), default=100, show_default=True, help="0: all.")
def list_approvals(client: ApiClient, fmt: str, limit: int, **filters: str | None) -> None:
    """Approval requests, newest first (pending ones unless --status says otherwise)."""
    query = {key: value for key, value in filters.items() if value is not None}
    items = client.list_all("/v1/approvals", query, limit=limit or None)
    if fmt == "json":
        click.echo(json.dumps(items, indent=2, ensure_ascii=False))
        return
    table = Table(header_style="bold")
    for column in (
        "id",
        "kind",
        "status",
        "policy",
        "secret",
        "repository",
        "ref",
        "actor",
        "approvals",
        "expires",
    ):
        table.add_column(column, no_wrap=column == "id")
    for item in items:
        workload = item.get("workload") or {}
        table.add_row(
            item["id"],
            item.get("kind", ""),
            item.get("status", ""),
            item.get("policy", ""),
            item.get("secret", ""),
            workload.get("repository") or "",
            workload.get("ref") or "",
            workload.get("actor") or "",
            f"{len(item.get('approvals') or [])}/{item.get('required')}",
            _short(item.get("expires_at")),
        )
    console().print(table)
    click.echo(f"{len(items)} request(s)")


@approvals.command("show")
@broker_options
@click.argument("request_id")
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True)
def show(client: ApiClient, request_id: str, fmt: str) -> None:
    """One request: the workload, the justification, who approved so far."""
    item = client.get(_path(request_id))
    click.echo(json.dumps(item, indent=2, ensure_ascii=False) if fmt == "json" else describe(item))


def describe(item: dict[str, Any]) -> str:
    workload = item.get("workload") or {}
    approvals = item.get("approvals") or []
    lines = [
        f"{item['id']}: {item.get('kind')} {item.get('status')}"
        + (f" ({item['end_reason']})" if item.get("end_reason") else ""),
        f"secret {item.get('secret')} under policy {item.get('policy')}",
        f"workload: {workload.get('repository')} {workload.get('ref')}, run {workload.get('run')}, "
        f"actor {workload.get('actor')}, event {workload.get('event')}",
        f"approvals: {len(approvals)} of {item.get('required')}"
        + (f" ({', '.join(a['approver'] for a in approvals)})" if approvals else ""),
        f"approvers: {', '.join(item.get('approvers') or []) or 'any admin or approver'}",
        f"expires: {_short(item.get('expires_at'))}",
    ]
    if item.get("justification"):
        lines.append(f"justification: {item['justification']}")
    if item.get("denial"):
        lines.append(f"denied by {item['denial']['approver']}: {item['denial'].get('comment') or ''}")
    if item.get("lease_id"):
        lines.append(f"lease: {item['lease_id']}")
    return "\n".join(lines)


@approvals.command("approve")
@broker_options
@click.argument("request_id")
@click.option("--comment", default=None, help="Why (recorded in the audit ledger).")
def approve(client: ApiClient, request_id: str, comment: str | None) -> None:
    """Approve REQUEST_ID (never your own run: the broker refuses self-approval)."""
    item = client.post(_path(request_id, "/approve"), {"comment": comment})
    click.echo(f"{item['id']}: {item['status']} ({len(item.get('approvals') or [])} of {item['required']})")


@approvals.command("deny")
@broker_options
@click.argument("request_id")
@click.option("--comment", default=None, help="Why (recorded in the audit ledger).")
def deny(client: ApiClient, request_id: str, comment: str | None) -> None:
    """Deny REQUEST_ID: one denial ends it."""
    item = client.post(_path(request_id, "/deny"), {"comment": comment})
    click.echo(f"{item['id']}: {item['status']}")
