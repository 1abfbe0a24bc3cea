"""`transom leases list|revoke`: what is leased now (and before), and ending leases by hand."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import click
from rich.table import Table

from app.admin.api_client import ApiClient, broker_options
from app.admin.terminal import console
from app.instants import format_instant, parse_instant
from app.leases.schemas import STATUSES

BULK_FILTERS = ("policy", "secret", "repository", "branch", "issuer")


@click.group()
def leases() -> None:
    """Leases: list them, revoke one or many."""


@leases.command("list")
@broker_options
@click.option("--status", type=click.Choice(STATUSES), default=None)
@click.option("--secret", default=None)
@click.option("--policy", default=None)
@click.option("--issuer", default=None)
@click.option("--repository", default=None)
@click.option("--branch", default=None)
@click.option(
    "--format", "fmt", type=click.Choice(("table", "json", "csv")), default="table", show_default=True
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="At most this many, newest first (0: all). csv is always the whole filtered set.",
)
def list_leases(client: ApiClient, fmt: str, limit: int, **filters: str | None) -> None:
    """Leases, newest first, as a table, JSON or CSV."""
    query = {key: value for key, value in filters.items() if value is not None}
    if fmt == "csv":
        with click.open_file("-", "wb") as stdout:
            client.stream_to("/v1/leases", {**query, "format": "csv"}, stdout)
        return
    items = client.list_all("/v1/leases", query, limit=limit or None)
    if fmt == "json":
        click.echo(json.dumps(items, indent=2, ensure_ascii=False))
        return
    console().print(lease_table(items))
    more = " (the newest; --limit 0 shows all)" if limit and len(items) >= limit else ""
    click.echo(f"{len(items)} lease(s){more}")


def lease_table(items: list[dict[str, Any]]) -> Table:
    table = Table(header_style="bold")
    table.add_column("id", no_wrap=True)
    for column in ("status", "policy", "secret", "repository", "ref", "issued_at", "ends", "reason"):
        table.add_column(column)
    for lease in items:
        identity = lease.get("identity") or {}
        ref = identity.get("branch") or (
            f"tag {identity['tag']}" if identity.get("tag") else identity.get("ref")
        )
        ended = lease.get("ended_at")
        table.add_row(
            lease["id"],
            lease.get("status", ""),
            lease.get("policy") or "",
            lease.get("secret") or "",
            identity.get("repository") or "",
            ref or "",
            _short(lease.get("issued_at")),
            f"ended {_short(ended)}" if ended else _short(lease.get("expires_at")),
            lease.get("end_reason") or "",
        )
    return table


def _short(instant: str | None) -> str:
    """``2026-12-01 10:00:00Z``: to the second, which is what a table reader compares."""
    return format_instant(parse_instant(instant).replace(microsecond=0)).replace("T", " ") if instant else ""


@leases.command("revoke")
@broker_options
@click.argument("lease_id", required=False)
@click.option("--policy", default=None, help="Bulk: every active lease under this policy.")
@click.option("--secret", default=None, help="Bulk: every active lease of this secret.")
@click.option("--repository", default=None, help="Bulk: every active lease of this repository.")
@click.option("--branch", default=None, help="Bulk: every active lease from this branch.")
@click.option("--issuer", default=None, help="Bulk: every active lease whose token came from this issuer.")
@click.option("--reason", default=None, help="Why (recorded in the audit ledger).")
@click.option("--yes", is_flag=True, help="Bulk: do not ask for confirmation.")
def revoke(
    client: ApiClient, lease_id: str | None, reason: str | None, yes: bool, **filters: str | None
) -> None:
    """Revoke lease LEASE_ID, or every active lease matching the filters (bulk).

    The credential is revoked at Vault before the lease reads revoked.
    """
    chosen = {key: value for key, value in filters.items() if value is not None}
    if lease_id and chosen:
        raise click.UsageError("give either a LEASE_ID or filters (--policy, --secret, ...), not both")
    if not lease_id and not chosen:
        raise click.UsageError(
            "give a LEASE_ID, or at least one of --policy, --secret, --repository, --branch, --issuer"
        )
    if lease_id:
        status, lease = client.post_with_status(
            f"/v1/leases/{quote(lease_id, safe='')}/revoke", {"reason": reason}
        )
        if status == 202:
            click.echo(f"{lease['id']}: revoking (Vault has not confirmed yet; the broker keeps trying)")
        else:
            click.echo(f"{lease['id']}: {lease['status']}")
        return
    if not reason:
        raise click.UsageError("a bulk revocation needs --reason")
    described = ", ".join(f"{key}={value}" for key, value in chosen.items())
    if not yes:
        matching = len(client.list_all("/v1/leases", {**chosen, "status": "active"}))
        click.confirm(f"Revoke {matching} active lease(s) matching {described}?", abort=True, err=True)
    result = client.post("/v1/leases/revoke", {"filter": chosen, "reason": reason})
    click.echo(f"revoked {result['revoked']} lease(s) matching {described}")
