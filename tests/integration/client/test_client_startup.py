"""What runs in every CI job starts without loading the server's stack: `transom lease`, and `transom dev
token`, which ``TRANSOM_ID_TOKEN_COMMAND`` runs for every lease call; `transom --version` likewise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jwt

from app.devserver.demo_issuer import STATE_FILE, load_or_create_key

SERVER_MODULES = ("flask", "sqlalchemy", "alembic", "hvac", "apscheduler", "marshmallow", "werkzeug")


def _run(args: list[str], env: dict[str, str] | None = None) -> tuple[list[str], str]:
    """Run `transom ARGS` in a fresh interpreter: the server modules it loaded, and its stdout."""
    probe = f"""
import json, sys
from app.cli import main
try:
    main({args!r}, prog_name="transom")
except SystemExit:
    pass
print(json.dumps([m for m in {list(SERVER_MODULES)!r} if m in sys.modules]))
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env)
    *output, loaded = done.stdout.strip().splitlines()
    return json.loads(loaded), "\n".join(output)


def test_the_ci_client_does_not_import_the_server() -> None:
    loaded, output = _run(["lease", "--help"])
    assert loaded == []
    assert "Usage: transom lease" in output


def test_version_comes_from_the_package_metadata_without_the_server() -> None:
    loaded, output = _run(["--version"])
    assert loaded == []
    assert output.startswith("transom 0.")


def test_dev_token_mints_without_the_server_stack(tmp_path: Path) -> None:
    dev_dir = tmp_path / "instance" / "dev"
    key = load_or_create_key(dev_dir)
    (dev_dir / STATE_FILE).write_text(json.dumps({"url": "http://127.0.0.1:1", "kid": key.kid}))
    env = {**os.environ, "TRANSOM_INSTANCE_DIR": str(tmp_path / "instance")}

    loaded, output = _run(["dev", "token", "--branch", "release"], env)

    assert loaded == []
    claims = jwt.decode(
        output.strip(), key.private_key.public_key(), algorithms=["RS256"], audience="transom-dev"
    )
    assert claims["ref"] == "refs/heads/release" and claims["repository"] == "acme/app"
