"""`transom lease request|renew|release|show` step by step, GitHub Actions token discovery, masking,
$GITHUB_ENV, and what a denied or unreachable request tells the human and the pipeline."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.integration.client.conftest import LiveBroker

MULTILINE = "-----BEGIN KEY-----\nline-two-%0A-of-it\n-----END KEY-----"


def _parse_env(text: str) -> dict[str, str]:
    """The environment after `eval "$(transom lease request)"` in a POSIX shell."""
    dump = f"{shlex.quote(sys.executable)} -c 'import json, os; print(json.dumps(dict(os.environ)))'"
    done = subprocess.run(
        ["sh", "-c", f'eval "$1" && exec {dump}', "sh", text],
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=True,
    )
    found: dict[str, str] = json.loads(done.stdout)
    return found


def _parse_github_env(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        name, sep, delimiter = line.partition("<<")
        if not sep:
            continue
        body = []
        for inner in lines:
            if inner == delimiter:
                break
            body.append(inner)
        found[name] = "\n".join(body)
    return found


def _multiline_secret(live: LiveBroker) -> dict[str, str]:
    values = live.broker.kv_secret("tls-cert", {"private_key": MULTILINE, "pin": "p%w'd\"$x"})
    policy = live.broker.admin("GET", "/v1/policies/deploy-prod").get_json()
    body = {k: policy[k] for k in ("issuer", "repositories", "branches", "windows", "max_ttl")}
    response = live.broker.admin("PUT", "/v1/policies/deploy-prod", {**body, "secrets": ["tls-cert"]})
    assert response.status_code == 200, response.get_json()
    return values


def test_the_github_token_is_asked_for_with_the_runtime_bearer_and_the_audience(live: LiveBroker) -> None:
    done = live.client("lease", "request", "--secret", "prod-db-static", "--format", "json")

    assert done.returncode == 0, done.stderr
    assert len(live.github.requests) == 1
    asked = live.github.requests[0]
    assert asked["authorized"]
    assert asked["query"]["audience"] == [live.broker.issuer.audience]
    assert asked["query"]["api-version"] == ["2.0"]  # the runtime's own parameters are kept


def test_a_refused_runtime_bearer_is_a_usage_error_with_the_permission_hint(live: LiveBroker) -> None:
    env = live.env(ACTIONS_ID_TOKEN_REQUEST_TOKEN="not-the-runtime-token")
    done = live.client("lease", "request", "--secret", "prod-db-static", env=env)

    assert done.returncode == 2
    assert "id-token: write" in done.stderr
    assert live.leases() == []


def test_a_wrong_audience_is_denied_by_the_broker(live: LiveBroker) -> None:
    done = live.client(
        "lease", "request", "--secret", "prod-db-static", env=live.env(TRANSOM_AUDIENCE="other")
    )

    assert done.returncode == 3
    assert "bad_audience" in done.stderr
    assert f'the token is for audience "other"; this issuer accepts "{live.broker.issuer.audience}"' in (
        done.stderr
    )


def _masked(output: str) -> set[str]:
    return {
        line.removeprefix("::add-mask::") for line in output.splitlines() if line.startswith("::add-mask::")
    }


EXPECTED_MASKS = {"-----BEGIN KEY-----", "line-two-%250A-of-it", "-----END KEY-----", "p%25w'd\"$x"}


def test_on_github_actions_exec_masks_every_line_of_every_value_before_the_command_runs(
    live: LiveBroker, tmp_path: Path
) -> None:
    _multiline_secret(live)
    command = [sys.executable, "-c", "import os; print('RAN', len(os.environ['PRIVATE_KEY']))"]
    done = live.client(
        "lease", "exec", "--secret", "tls-cert", "--", *command, env=live.env(GITHUB_ACTIONS="true")
    )

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    ran = next(i for i, line in enumerate(lines) if line.startswith("RAN"))
    assert all(line.startswith("::add-mask::") for line in lines[:ran])  # every mask before the command
    assert _masked("\n".join(lines[:ran])) >= EXPECTED_MASKS


def test_on_github_actions_env_output_stays_evaluable_and_masks_go_to_stderr(live: LiveBroker) -> None:
    values = _multiline_secret(live)
    done = live.client("lease", "request", "--secret", "tls-cert", env=live.env(GITHUB_ACTIONS="true"))

    assert done.returncode == 0, done.stderr
    # `eval "$(transom lease request)"`: stdout is data, so the masks go to the runner through stderr.
    assert _masked(done.stderr) >= EXPECTED_MASKS
    assert "::add-mask::" not in done.stdout
    evaluated = _parse_env(done.stdout)
    assert evaluated["PRIVATE_KEY"] == values["private_key"]
    assert evaluated["PIN"] == values["pin"]
    mask_free_stderr = "\n".join(
        line for line in done.stderr.splitlines() if not line.startswith("::add-mask::")
    )
    for value in values.values():
        assert value not in mask_free_stderr


def test_github_env_gets_multiline_safe_blocks_and_release_reads_the_ids(
    live: LiveBroker, tmp_path: Path
) -> None:
    values = _multiline_secret(live)
    github_env = tmp_path / "github_env"
    github_env.write_text("EARLIER=kept\n")
    env = live.env(GITHUB_ACTIONS="true", GITHUB_ENV=str(github_env))

    done = live.client("lease", "request", "--secret", "tls-cert", "--format", "github-env", env=env)

    assert done.returncode == 0, done.stderr
    written = github_env.read_text()
    assert written.startswith("EARLIER=kept\n")
    variables = _parse_github_env(written)
    assert variables["PRIVATE_KEY"] == values["private_key"]
    assert variables["PIN"] == values["pin"]
    delimiters = re.findall(r"^\w+<<(.+)$", written, flags=re.MULTILINE)
    assert len(set(delimiters)) == len(delimiters) == 3  # a fresh random delimiter per variable
    assert _masked(done.stdout) >= EXPECTED_MASKS
    assert all(line.startswith("::add-mask::") for line in done.stdout.splitlines())  # no value on stdout
    lease_id = variables["TRANSOM_LEASE_IDS"]
    assert live.leases()[0]["id"] == lease_id

    # A later step of the same job: the ids come from the environment $GITHUB_ENV set.
    released = live.client("lease", "release", env={**env, "TRANSOM_LEASE_IDS": lease_id})
    assert released.returncode == 0, released.stderr
    assert live.leases()[0]["status"] == "released"


def test_request_renew_show_release_step_by_step(live: LiveBroker) -> None:
    requested = live.client("lease", "request", "--secret", "prod-vault-token", "--ttl", "5m")
    assert requested.returncode == 0, requested.stderr
    variables = _parse_env(requested.stdout)
    assert live.token_works(variables["TOKEN"])
    ids = variables["TRANSOM_LEASE_IDS"]
    env = live.env(TRANSOM_LEASE_IDS=ids)

    renewed = live.client("lease", "renew", "--ttl", "20m", "--format", "json", env=env)
    assert renewed.returncode == 0, renewed.stderr
    assert '"renewals": 1' in renewed.stdout

    shown = live.client("lease", "show", env=env)
    assert shown.returncode == 0, shown.stderr
    header, row = shown.stdout.splitlines()
    assert header.split("\t") == ["id", "secret", "status", "expires_at", "bounded_by"]
    assert row.split("\t")[:3] == [ids, "prod-vault-token", "active"]

    released = live.client("lease", "release", env=env)
    assert released.returncode == 0, released.stderr
    assert not live.token_works(variables["TOKEN"])
    again = live.client("lease", "release", env=env)
    assert again.returncode == 0 and "already ended" in again.stderr


def test_a_denial_names_every_reason_and_the_next_opening_and_exits_3(live: LiveBroker) -> None:
    opens = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    live.broker.create(
        "/v1/windows",
        {
            "name": "tonight",
            "schedule": {
                "type": "once",
                "start": opens.isoformat(),
                "end": (opens + timedelta(hours=1)).isoformat(),
            },
        },
    )
    policy = live.broker.admin("GET", "/v1/policies/deploy-prod").get_json()
    body = {k: policy[k] for k in ("issuer", "secrets", "repositories", "branches", "max_ttl")}
    assert (
        live.broker.admin("PUT", "/v1/policies/deploy-prod", {**body, "windows": ["tonight"]}).status_code
        == 200
    )
    live.github.claims = {"ref": "refs/heads/feature/x"}

    done = live.client("lease", "request", "--secret", "prod-db-static")

    assert done.returncode == 3
    assert done.stdout == ""
    assert "branch_not_allowed" in done.stderr
    assert "outside_window" in done.stderr
    shown = opens.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (
        f"next window opening: {shown} (in 1h 59m)" in done.stderr
        or f"next window opening: {shown} (in 2h)" in done.stderr
    )


def test_an_unreachable_broker_exits_4(live: LiveBroker) -> None:
    done = live.client(
        "lease", "request", "--secret", "prod-db-static", env=live.env(TRANSOM_URL="http://127.0.0.1:9")
    )

    assert done.returncode == 4
    assert "cannot reach the broker" in done.stderr


def test_no_token_anywhere_is_a_usage_error(live: LiveBroker) -> None:
    env = live.env(ACTIONS_ID_TOKEN_REQUEST_URL=None, ACTIONS_ID_TOKEN_REQUEST_TOKEN=None)
    done = live.client("lease", "request", "--secret", "prod-db-static", env=env)

    assert done.returncode == 2
    assert "no OIDC ID token" in done.stderr
