"""Admin and auditor commands that talk to a broker's API with a broker token."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
