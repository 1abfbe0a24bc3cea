"""`transom worker`: the scheduler process."""

from __future__ import annotations

import click


@click.command()
def worker() -> None:
    """Run the scheduler: expiry, revocation retries, freezes, re-evaluation."""
    raise click.ClickException("the worker is not built yet")
