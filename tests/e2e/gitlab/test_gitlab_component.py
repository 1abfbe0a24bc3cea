"""The GitLab CI/CD component (templates/transom-lease.yml) as GitLab would run it: its inputs interpolated
into the job, the job's variables and one freshly minted GitLab ID token per `id_tokens` entry in the
environment, and its script lines run by bash in order, stopping at the first that fails. Against a live
broker and the real OpenBao; the component's pip line installs the client alone, from this checkout's wheel,
into a fresh venv that stands in for the job's image."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.settings import PROJECT_ROOT
from tests.e2e.client_wheel import build_wheel, fresh_venv, outside_env
from tests.integration.client.conftest import LiveBroker
from tests.support.oidc_issuer import OidcIssuer

pytestmark = [pytest.mark.vault, pytest.mark.slow]

COMPONENT = PROJECT_ROOT / "templates" / "transom-lease.yml"
INTERPOLATION = re.compile(r"\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*\]\]")

# The command under the component: writes what it saw.
CHILD = """
import json, os, sys
json.dump({k: os.environ.get(k) for k in ("DB_PASSWORD", "DB_USER", "TOKEN")}, open(sys.argv[1], "w"))
"""


def component_job(inputs: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    """GitLab's reading of the component: the spec's inputs (defaults, required ones), interpolated into the
    job document's text, which is then parsed. Returns the job's name and definition."""
    header, body = COMPONENT.read_text().split("\n---\n", 1)
    spec = yaml.safe_load(header)["spec"]["inputs"]
    unknown = set(inputs) - set(spec)
    assert not unknown, f"the component has no input {unknown}"
    values = {name: inputs.get(name, declared.get("default")) for name, declared in spec.items()}
    missing = [name for name, value in values.items() if value is None]
    assert not missing, f"required inputs not given: {missing}"
    (name, job), *others = yaml.safe_load(INTERPOLATION.sub(lambda m: str(values[m.group(1)]), body)).items()
    assert not others
    return name, job


@dataclass
class GitlabJob:
    name: str
    definition: dict[str, Any]
    env: dict[str, str]

    def run(self, cwd: Path) -> subprocess.CompletedProcess[str]:
        """The script's lines in one bash, as GitLab's shell executor runs them: stop at the first failure."""
        script = "set -eo pipefail\n" + "\n".join(self.definition["script"])
        return subprocess.run(
            ["bash", "-c", script],
            env=self.env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The job's image: a fresh Python with pip and nothing else (its bin directory), and the wheel the
    component's `client` input installs."""
    where = tmp_path_factory.mktemp("gitlab-image")
    return fresh_venv(where / "python"), build_wheel(where / "wheels")


@pytest.fixture
def gitlab(live: LiveBroker) -> Iterator[OidcIssuer]:
    """GitLab's issuer at the broker, and a policy that lets acme/payments' main branch lease both secrets."""
    with OidcIssuer() as issuer:
        live.broker.create(
            "/v1/issuers",
            {"name": "gitlab", "issuer": issuer.url, "flavor": "gitlab", "audiences": [issuer.audience]},
        )
        live.broker.policy("gitlab-deploy", issuer="gitlab")
        yield issuer


def gitlab_job(job: tuple[str, dict[str, Any]], issuer: OidcIssuer, bin_dir: Path) -> GitlabJob:
    """The job's environment: GitLab's predefined variables, the job's own, and each ID token minted for its
    audience (GitLab mints them once, when the job starts)."""
    name, definition = job
    env = {
        k: v for k, v in outside_env().items() if not k.startswith(("CI", "GITLAB", "TRANSOM_", "GITHUB_"))
    }
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    env.update({"CI": "true", "GITLAB_CI": "true", "CI_JOB_NAME": name, "CI_PROJECT_PATH": "acme/payments"})
    assert all(isinstance(v, str) for v in definition["variables"].values()), definition["variables"]
    env.update(definition["variables"])
    for variable, token in definition["id_tokens"].items():
        env[variable] = issuer.mint(claims=issuer.gitlab_claims(audience=token["aud"], jti=str(uuid.uuid4())))
    return GitlabJob(name, definition, env)


def test_the_component_declares_its_inputs_and_an_id_token_per_secret() -> None:
    name, job = component_job(
        {"url": "https://transom.example.com", "audience": "aud", "secrets": "a", "command": "./deploy.sh"}
    )

    assert name == "transom-deploy" and job["stage"] == "deploy" and job["image"] == "python:3.11-slim"
    assert job["id_tokens"] == {f"TRANSOM_ID_TOKEN_{n}": {"aud": "aud"} for n in range(1, 5)}
    assert job["variables"]["TRANSOM_URL"] == "https://transom.example.com"
    assert (
        job["script"][-1].rstrip().endswith('transom lease exec "$@" $TRANSOM_LEASE_OPTIONS -- ./deploy.sh')
    )


def test_the_component_leases_runs_the_command_and_releases(
    live: LiveBroker, gitlab: OidcIssuer, image: tuple[Path, Path], tmp_path: Path
) -> None:
    bin_dir, wheel = image
    (tmp_path / "child.py").write_text(CHILD)
    job = component_job(
        {
            "job": "deploy-prod",
            "url": live.url,
            "audience": gitlab.audience,
            "secrets": "prod-db-static prod-vault-token",
            "command": f"python child.py {tmp_path / 'seen.json'}",
            "ttl": "5m",
            "client": str(wheel),
        }
    )

    done = gitlab_job(job, gitlab, bin_dir).run(tmp_path)

    assert done.returncode == 0, done.stderr
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert seen["DB_PASSWORD"] == live.kv_values()["db_password"]
    assert seen["DB_USER"] == live.kv_values()["db_user"]
    leases = live.leases()
    assert sorted(lease["secret"] for lease in leases) == ["prod-db-static", "prod-vault-token"]
    assert {lease["status"] for lease in leases} == {"released"}
    assert {lease["policy"] for lease in leases} == {"gitlab-deploy"}
    assert not live.token_works(seen["TOKEN"])
    for value in (*live.kv_values().values(), seen["TOKEN"]):
        assert value not in done.stdout + done.stderr


def test_more_secrets_than_id_tokens_stops_before_leasing(
    live: LiveBroker, gitlab: OidcIssuer, image: tuple[Path, Path], tmp_path: Path
) -> None:
    bin_dir, wheel = image
    job = component_job(
        {
            "url": live.url,
            "audience": gitlab.audience,
            "secrets": "a b c d e",
            "command": "true",
            "client": str(wheel),
        }
    )

    done = gitlab_job(job, gitlab, bin_dir).run(tmp_path)

    assert done.returncode == 2
    assert "at most 4 secrets per job (one ID token each)" in done.stderr
    assert live.leases() == []
