"""`transom policies evaluate`: would a policy grant this CI token this secret (now, or at a given time)?"""

from __future__ import annotations

from typing import IO, Any
from urllib.parse import quote

import click

from app.admin.api_client import ApiClient, broker_options
from app.client.broker import to_the_second


def duration_argument(value: str | None) -> int | str | None:
    """``--ttl 90`` means 90 seconds (the API reads a bare number only as an integer)."""
    if value is None:
        return None
    return int(value) if value.isdigit() else value


@click.group()
def policies() -> None:
    """Lease policies."""


@policies.command("evaluate")
@broker_options
@click.argument("name")
@click.option("--secret", required=True, help="The secret the job would ask for.")
@click.option(
    "--token-file",
    required=True,
    type=click.File("r"),
    help="A file holding the CI job's OIDC ID token ('-': standard input).",
)
@click.option("--at", default=None, help="Evaluate as of this RFC 3339 time (default: now).")
@click.option("--ttl", default=None, help="The lease length the job would ask for, e.g. 30m.")
@click.option(
    "--source-address",
    default=None,
    help="The job's client address, for a policy's source_networks (without it such a policy denies).",
)
def evaluate(
    client: ApiClient,
    name: str,
    secret: str,
    token_file: IO[str],
    at: str | None,
    ttl: str | None,
    source_address: str | None,
) -> None:
    """Dry-run policy NAME for a CI token; prints allowed, the reasons, and when the lease would end.

    Nothing is granted and the token is not used up; the broker records the evaluation in its ledger.
    """
    token = token_file.read().strip()
    if not token:
        raise click.BadParameter("the file is empty", param_hint="--token-file")
    body: dict[str, Any] = {"token": token, "secret": secret}
    if at is not None:
        body["at"] = at
    if ttl is not None:
        body["ttl"] = duration_argument(ttl)
    if source_address is not None:
        body["source_address"] = source_address
    result = client.post(f"/v1/policies/{quote(name, safe='')}/evaluate", body)
    for line in evaluation_lines(result):
        click.echo(line)


def evaluation_lines(result: dict[str, Any]) -> list[str]:
    lines = [f"allowed: {'yes' if result.get('allowed') else 'no'}"]
    if result.get("expires_at"):
        lines.append(f"expires_at: {to_the_second(result['expires_at'])}")
    if result.get("bounded_by"):
        lines.append(f"bounded_by: {result['bounded_by']}")
    if result.get("ttl") is not None:
        lines.append(f"ttl: {result['ttl']}s")
    reasons = result.get("reasons") or []
    lines.append("reasons:" if reasons else "reasons: none")
    lines += [f"  - {r.get('code')}: {r.get('message', '')}" for r in reasons]
    return lines
