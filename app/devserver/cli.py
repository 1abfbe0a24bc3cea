"""`transom dev`: a one-command local broker."""

from __future__ import annotations

import click


@click.group(invoke_without_command=True)
def dev() -> None:
    """Start OpenBao in dev mode, SQLite, the embedded scheduler and a demo issuer."""
    raise click.ClickException("transom dev is not built yet")
