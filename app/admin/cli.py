"""Admin and auditor commands that talk to a broker's API with a broker token.

``--url``/``TRANSOM_URL`` and ``--token``/``TRANSOM_TOKEN`` say which broker and as whom (both required,
no default); the broker enforces every rule, the commands only ask.
"""

from __future__ import annotations

import click

from app.admin.apply_command import apply
from app.admin.audit_command import audit
from app.admin.leases_command import leases
from app.admin.policies_command import policies
from app.admin.windows_command import windows

COMMANDS: list[click.Command] = [apply, policies, leases, windows, audit]
