"""`transom lease` runs in every CI job: it must start without loading the server's stack."""

from __future__ import annotations

import json
import subprocess
import sys

SERVER_MODULES = ("flask", "sqlalchemy", "alembic", "hvac", "apscheduler", "marshmallow")

PROBE = f"""
import json, sys
from app.cli import main
try:
    main(["lease", "--help"], prog_name="transom")
except SystemExit:
    pass
print(json.dumps([m for m in {list(SERVER_MODULES)!r} if m in sys.modules]))
"""


def test_the_ci_client_does_not_import_the_server() -> None:
    probe = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    loaded = json.loads(probe.stdout.strip().splitlines()[-1])
    assert loaded == []
    assert "Usage: transom lease" in probe.stdout
