"""`transom lease ...`: the CI client."""

from __future__ import annotations

import click


@click.group()
def lease() -> None:
    """Obtain, renew and release leases from a CI job."""
