"""`transom dev`: a one-command local broker; `transom dev token`: a demo CI token for it."""

from __future__ import annotations

import click

from app.devserver.token_command import token
from app.settings import INSTANCE_DIR


@click.group(invoke_without_command=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535), help="API port.")
@click.option(
    "--log-level",
    envvar="TRANSOM_LOG_LEVEL",
    default="INFO",
    show_default=True,
    type=click.Choice(("DEBUG", "INFO", "WARNING", "ERROR"), case_sensitive=False),
)
@click.pass_context
def dev(ctx: click.Context, port: int, log_level: str) -> None:
    """Start OpenBao in dev mode, SQLite, the embedded scheduler and a demo issuer; serve the API on
    127.0.0.1. Ctrl-C stops all of it. State lives in instance/ (TRANSOM_INSTANCE_DIR)."""
    if ctx.invoked_subcommand is not None:
        return
    # The server stack loads only to serve: `transom dev token` (below) runs on every lease call.
    from app.devserver.banner import announce
    from app.devserver.openbao import OpenBaoError
    from app.devserver.stack import DevError, DevStack

    try:
        DevStack(INSTANCE_DIR, port, {"log_level": log_level.upper()}).run(announce)
    except (DevError, OpenBaoError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("transom dev: stopped", err=True)


dev.add_command(token)
