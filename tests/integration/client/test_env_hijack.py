"""Issue 18, finding 9: leased key names must not hijack the CI job (docs/API.md, "Command line").

Whoever can write the KV secret at Vault chooses its key names, and the client turns key names into variable
names. The review's keys ``SHELLOPTS=xtrace`` and ``PS4=$(...)`` ran code in the child of ``transom lease
exec`` (bash does not take PS4 from the environment as root, so ``BASH_ENV``, which it expands for every
non-interactive shell, proves the same hole here whoever runs the tests). The client must refuse with exit 2,
before it runs anything, and release what it leased; ``--map`` may still choose a name explicitly.

Also here: the client sets RLIMIT_CORE to 0, and the command it runs inherits that.
"""

from __future__ import annotations

import json
import resource
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.settings import PROJECT_ROOT
from tests.integration.client.conftest import CLIENT, LiveBroker


@pytest.fixture
def marker() -> Iterator[Path]:
    path = Path(f"/tmp/pwned-{secrets.token_hex(8)}")
    yield path
    path.unlink(missing_ok=True)


def _hostile_secret(live: LiveBroker, marker: Path) -> dict[str, str]:
    """The ``prod-db-static`` secret rewritten at Vault by someone who may write it, not the job's code."""
    values = {
        "db_password": f"canary-{secrets.token_hex(8)}",
        "SHELLOPTS": "xtrace",
        "PS4": f"$(touch {marker})",
        "BASH_ENV": f"$(touch {marker})",
    }
    live.vault.write_kv(live.broker.kv_path, values)
    return values


def _assert_refused(done_stderr: str, *variables: str) -> None:
    headline = next(line for line in done_stderr.splitlines() if "refused to set" in line)
    for variable in variables:
        assert f"${variable}" in headline, done_stderr


def _assert_released(live: LiveBroker) -> None:
    leases = live.leases()
    assert leases, "no lease was taken"
    assert {lease["status"] for lease in leases} == {"released"}


def test_exec_refuses_shell_hijacking_keys_before_running_anything(
    live: LiveBroker, marker: Path, tmp_path: Path
) -> None:
    values = _hostile_secret(live, marker)
    ran = tmp_path / "child-ran"

    done = live.client(
        "lease", "exec", "--secret", "prod-db-static", "--", "bash", "-c", f"touch {ran}; true"
    )

    assert done.returncode == 2, done.stderr
    _assert_refused(done.stderr, "SHELLOPTS", "PS4", "BASH_ENV")
    assert "--map" in done.stderr
    assert not marker.exists(), "the leased key names ran code"
    assert not ran.exists(), "the command ran although its environment was refused"
    for value in values.values():
        assert value not in done.stdout + done.stderr
    _assert_released(live)


def test_exec_refuses_a_key_that_would_overwrite_the_jobs_own_variable(
    live: LiveBroker, tmp_path: Path
) -> None:
    env = live.env(DEPLOY_TARGET="staging")
    live.vault.write_kv(
        live.broker.kv_path, {"home": str(tmp_path / "attacker-home"), "deploy_target": "prod"}
    )
    ran = tmp_path / "child-ran"

    done = live.client("lease", "exec", "--secret", "prod-db-static", "--", "touch", str(ran), env=env)

    assert done.returncode == 2, done.stderr
    _assert_refused(done.stderr, "HOME", "DEPLOY_TARGET")
    assert "already sets it" in done.stderr
    assert not ran.exists()
    _assert_released(live)


def test_map_still_chooses_a_name_explicitly(live: LiveBroker, marker: Path, tmp_path: Path) -> None:
    _hostile_secret(live, marker)
    seen = tmp_path / "seen.json"
    dump = (
        "import json, os, sys; "
        "json.dump({k: os.environ.get(k) for k in ('HOME', 'SAFE_PS4')}, open(sys.argv[1], 'w'))"
    )
    live.vault.write_kv(live.broker.kv_path, {"home": "/srv/deploy", "PS4": f"$(touch {marker})"})

    done = live.client(
        "lease", "exec", "--secret", "prod-db-static", "--map", "home=HOME",
        "--map", "prod-db-static/PS4=SAFE_PS4", "--", sys.executable, "-c", dump, str(seen),
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert json.loads(seen.read_text()) == {"HOME": "/srv/deploy", "SAFE_PS4": f"$(touch {marker})"}
    assert not marker.exists()


@pytest.mark.parametrize("fmt", ["env", "dotenv", "json", "github-env"])
def test_request_refuses_them_in_every_format_and_hands_nothing_on(
    live: LiveBroker, marker: Path, tmp_path: Path, fmt: str
) -> None:
    values = _hostile_secret(live, marker)
    github_env = tmp_path / "github_env"
    github_env.write_text("")

    done = live.client(
        "lease",
        "request",
        "--secret",
        "prod-db-static",
        "--format",
        fmt,
        env=live.env(GITHUB_ENV=str(github_env)),
    )

    assert done.returncode == 2, done.stderr
    _assert_refused(done.stderr, "SHELLOPTS", "PS4", "BASH_ENV")
    assert done.stdout == ""
    assert github_env.read_text() == ""
    for value in values.values():
        assert value not in done.stderr
    _assert_released(live)


def test_the_client_and_its_command_write_no_core_dumps(live: LiveBroker) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_CORE)

    def allow_core_dumps() -> None:  # what a developer's shell or a runner may well have
        resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))

    if hard == 0:
        pytest.skip("this machine forbids core dumps already: nothing to show")
    done = subprocess.run(
        [*CLIENT, "lease", "exec", "--secret", "prod-db-static", "--", "sh", "-c", "ulimit -c; ulimit -H -c"],
        env=live.env(),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=allow_core_dumps,  # only raises a limit, before exec
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "0"]
