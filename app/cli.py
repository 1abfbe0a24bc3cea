"""The `transom` command. Each subcommand is imported only when it runs, so `transom lease` in a CI job
starts without loading the server (Flask, SQLAlchemy, Alembic)."""

from __future__ import annotations

import contextlib
import importlib

import click

# name → "module:attribute" of the click command
COMMANDS = {
    "lease": "app.client.cli:lease",
    "apply": "app.admin.apply_command:apply",
    "policies": "app.admin.policies_command:policies",
    "leases": "app.admin.leases_command:leases",
    "windows": "app.admin.windows_command:windows",
    "audit": "app.admin.audit_command:audit",
    "db": "app.server_commands:db",
    "tokens": "app.server_commands:tokens",
    "serve": "app.server_commands:serve",
    "worker": "app.scheduler.cli:worker",
    "dev": "app.devserver.cli:dev",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target.split(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command


def no_core_dumps() -> None:
    """Set RLIMIT_CORE to 0 (soft and hard): a crash must not write leased values, tokens or the broker's
    Vault credentials to a core file. The command ``transom lease exec`` runs inherits it, on purpose."""
    try:
        import resource
    except ImportError:  # not on Windows
        return
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


@click.group(cls=LazyGroup)
@click.version_option(package_name="transom", prog_name="transom", message="%(prog)s %(version)s")
def main() -> None:
    """Transom: a secrets broker with just-in-time leases for CI pipelines."""
    no_core_dumps()


if __name__ == "__main__":
    main()
