"""The commands that run or prepare the broker itself: `db upgrade`, `tokens create`, `serve`."""

from __future__ import annotations

import os
import sys

import click

from app.audit.ledger import Actor, Ledger
from app.clock import SystemClock
from app.db import make_engine, make_session_factory, transaction
from app.decision.durations import parse_duration
from app.migrate import upgrade_database
from app.settings import PROJECT_ROOT, ConfigError, Settings, load_settings
from app.tokens.service import ROLES, TokenService

GUNICORN_CONFIG = PROJECT_ROOT / "config" / "gunicorn.conf.py"


@click.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration to TRANSOM_DATABASE_URL."""
    settings = _settings()
    upgrade_database(settings.database_url)
    click.echo("database is at the newest schema", err=True)


@click.group()
def tokens() -> None:
    """Broker API tokens for admins, auditors and approvers."""


@tokens.command("create")
@click.option("--name", required=True, help="A unique name for the token.")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--ttl", default=None, help="Lifetime, e.g. 30d (default 90d, at most TRANSOM_TOKEN_MAX_TTL).")
@click.option("--ci-login", default=None, help="The person's CI login: they never approve their own runs.")
def tokens_create(name: str, role: str, ttl: str | None, ci_login: str | None) -> None:
    """Create a token and print it, alone, on stdout (it is shown only this once)."""
    settings = _settings()
    try:
        lifetime = parse_duration(ttl) if ttl else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--ttl") from None
    engine = make_engine(settings.database_url)
    clock = SystemClock()
    try:
        with transaction(make_session_factory(engine)) as session:
            service = TokenService(session, clock, Ledger(session, clock))
            new = service.create_token(
                name,
                role,
                lifetime,
                actor=Actor("system", "cli"),
                max_ttl=settings.token_max_lifetime,
                ci_login=ci_login,
            )
    except Exception as exc:
        raise click.ClickException(getattr(exc, "detail", None) or "could not create the token") from None
    finally:
        engine.dispose()
    click.echo(new.token)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Serve the API with gunicorn (config/gunicorn.conf.py)."""
    _settings()  # fail here, with the setting's name, rather than in every gunicorn worker
    os.environ["TRANSOM_BIND"] = f"{host}:{port}"
    argv = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONFIG), "app.wsgi:app"]
    os.execv(sys.executable, argv)


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
