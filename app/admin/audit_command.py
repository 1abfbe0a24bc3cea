"""`transom audit verify|export`: check the ledger's hash chain; download events as CSV or JSON Lines."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

import click

from app.admin.api_client import ApiClient, broker_options


@click.group()
def audit() -> None:
    """The audit ledger."""


@audit.command("verify")
@broker_options
def verify(client: ApiClient) -> None:
    """Verify the ledger's hash chain on the broker; exit 1 when it does not verify."""
    result = client.get("/v1/audit/verify")
    if result.get("ok"):
        click.echo(f"ok: {result.get('checked', 0)} event(s) checked, head {result.get('head') or '-'}")
        return
    click.echo(
        f"NOT OK: the chain breaks at event {result.get('first_bad_id')} "
        f"({result.get('checked', 0)} event(s) checked)",
        err=True,
    )
    raise SystemExit(1)


@audit.command("export")
@broker_options
@click.option("--format", "fmt", type=click.Choice(("csv", "jsonl")), default="csv", show_default=True)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write here (default: standard output). The file appears only once the export is complete.",
)
@click.option("--action", default=None, help="e.g. lease.granted")
@click.option("--lease-id", default=None)
@click.option("--policy", default=None)
@click.option("--secret", default=None)
@click.option("--repository", default=None)
@click.option("--branch", default=None)
@click.option("--actor", default=None)
@click.option("--after", default=None, help="RFC 3339 time.")
@click.option("--before", default=None, help="RFC 3339 time.")
def export(client: ApiClient, fmt: str, output: Path | None, **filters: str | None) -> None:
    """Stream the audit events (filtered) as CSV or JSON Lines."""
    params = {"format": fmt, **{key: value for key, value in filters.items() if value is not None}}
    if output is None:
        with click.open_file("-", "wb") as stdout:
            client.stream_to("/v1/audit/events", params, stdout)
        return
    partial = output.with_name(output.name + ".partial")
    try:
        with partial.open("wb") as out:
            written = client.stream_to("/v1/audit/events", params, out)
            _sync(out)
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)
    click.echo(f"wrote {written} bytes to {output}", err=True)


def _sync(out: IO[bytes]) -> None:
    out.flush()
    os.fsync(out.fileno())
