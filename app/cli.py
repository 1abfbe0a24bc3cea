"""The `transom` command. Each subcommand is imported only when it runs, so `transom lease` in a CI job
starts without loading the server (Flask, SQLAlchemy, Alembic).

`pip install transom` is the CI client alone; the broker's commands need `transom[server]` (README,
"Installs"). Before importing a command, the group checks that the packages it needs are installed, by
locating them (never importing them), and otherwise names the install that brings them, with exit 2.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
from collections.abc import Callable, Sequence

import click

# name → "module:attribute" of the click command
COMMANDS = {
    "lease": "app.client.cli:lease",
    "apply": "app.admin.apply_command:apply",
    "policies": "app.admin.policies_command:policies",
    "leases": "app.admin.leases_command:leases",
    "windows": "app.admin.windows_command:windows",
    "audit": "app.admin.audit_command:audit",
    "approvals": "app.admin.approvals_command:approvals",
    "db": "app.server_commands:db",
    "tokens": "app.server_commands:tokens",
    "serve": "app.server_commands:serve",
    "worker": "app.scheduler.cli:worker",
    "dev": "app.devserver.cli:dev",
}

# The top-level modules of the `server` extra (pyproject.toml), which a client-only install lacks.
SERVER_MODULES = (
    "flask", "sqlalchemy", "alembic", "marshmallow", "flask_smorest", "hvac", "apscheduler", "gunicorn",
    "jwt", "cryptography", "croniter", "prometheus_client", "psycopg", "yaml", "rich",
)  # fmt: skip

# name → (extra to install, modules it brings that the command imports). A command not named here (`lease`,
# `policies`) needs only the base install. `apply`, `leases` and `windows` share the broker's schemas and
# its rendering (rich), so they come with the broker.
NEEDS: dict[str, tuple[str, Sequence[str]]] = {
    "apply": ("server", SERVER_MODULES),
    "leases": ("server", SERVER_MODULES),
    "windows": ("server", SERVER_MODULES),
    "db": ("server", SERVER_MODULES),
    "tokens": ("server", SERVER_MODULES),
    "serve": ("server", SERVER_MODULES),
    "worker": ("server", SERVER_MODULES),
    "dev": ("server,dev", SERVER_MODULES),
    # `verify` and `prove` check Ed25519 signatures offline
    "audit": ("audit", ("cryptography",)),
}


def installed(module: str) -> bool:
    """Whether a top-level module can be imported, found without importing it."""
    return importlib.util.find_spec(module) is not None


def missing_install(name: str, present: Callable[[str], bool] = installed) -> str | None:
    """What to tell someone whose install lacks what ``transom NAME`` needs, or None when nothing lacks."""
    extra, modules = NEEDS.get(name, ("", ()))
    lacking = [module for module in modules if not present(module)]
    if not lacking:
        return None
    what = "the broker" if extra.startswith("server") else ", ".join(lacking)
    return f"this command needs {what}: pip install 'transom[{extra}]'"


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        problem = missing_install(cmd_name)
        if problem is not None:
            click.echo(f"transom {cmd_name}: {problem}", err=True)
            ctx.exit(2)
        module, attribute = target.split(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """``transom --help``: a command this install cannot run is listed with the install it needs."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            problem = missing_install(name)
            if problem is None:
                command = self.get_command(ctx, name)
                help_text = command.get_short_help_str(limit) if command is not None else ""
            else:
                help_text = problem.replace("this command needs", "needs")
            rows.append((name, help_text))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


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
