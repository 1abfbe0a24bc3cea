"""`transom apply -f FILE`: make the broker's configuration what a declarative file says."""

from __future__ import annotations

from pathlib import Path

import click

from app.admin.api_client import ApiClient, broker_options
from app.admin.apply import execute, fetch_current
from app.admin.config_file import FileProblem, read_document
from app.admin.plan import InvalidFile, make_plan, plan_lines


@click.command("apply")
@broker_options
@click.option(
    "-f",
    "--file",
    "path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A TOML (or .yaml/.yml) file of issuers, secrets, windows, freezes and policies.",
)
@click.option("--prune", is_flag=True, help="Also delete what the file does not name.")
@click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")
def apply(client: ApiClient, path: Path, prune: bool, dry_run: bool) -> None:
    """Plan the changes that make the broker match FILE, print them, then apply them.

    Issuers, secrets and windows are written before the policies that use them, freezes after the
    policies they name, deletions (with --prune) in the reverse order. The whole file and its references
    are checked before the first write; applying the same file again changes nothing.
    """
    try:
        document = read_document(path)
    except FileProblem as exc:
        raise click.ClickException(f"{exc}\nNothing was changed.") from None
    current = fetch_current(client)
    try:
        plan = make_plan(document, current, prune=prune)
    except InvalidFile as exc:
        listed = "\n".join(f"  {problem}" for problem in exc.problems)
        raise click.ClickException(
            f"{path}: {len(exc.problems)} problem(s); nothing was changed:\n{listed}"
        ) from None
    click.echo(f"Plan for {path} against {client.base_url}" + (" (dry run)" if dry_run else "") + ":")
    for line in plan_lines(plan):
        click.echo(line)
    if dry_run or not plan.changes:
        return
    applied = execute(client, plan, click.echo)
    click.echo(f"Applied {applied} change(s).")
