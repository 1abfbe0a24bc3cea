"""The naming rule against hijacking the job (issue 18, finding 9): a key's default name may not change how
the job's programs run, nor overwrite the job's own variables; ``--map`` still names a value explicitly."""

from __future__ import annotations

import pytest

from app.client.broker import LeaseView
from app.client.envguard import dangerous, refusal
from app.client.errors import EXIT_USAGE, UsageError
from app.client.naming import EnvNaming

JOB = {"HOME": "/home/runner", "CI": "true", "DEPLOY_TARGET": "prod"}


def _lease(data: dict[str, object], secret: str = "db") -> LeaseView:
    return LeaseView.from_json({"id": "lse_1", "secret": secret, "status": "active", "ttl": 60, "data": data})


@pytest.mark.parametrize(
    "name",
    [
        "PATH", "LD_PRELOAD", "LD_LIBRARY_PATH", "DYLD_INSERT_LIBRARIES", "BASH_ENV", "ENV", "SHELLOPTS",
        "BASHOPTS", "PS4", "IFS", "PROMPT_COMMAND", "BASH_FUNC_LS", "PYTHONPATH", "PYTHONSTARTUP",
        "PYTHONWARNINGS", "NODE_OPTIONS", "PERL5OPT", "PERL5LIB", "RUBYOPT", "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS", "GIT_SSH_COMMAND", "GIT_CONFIG_COUNT", "GIT_CONFIG_KEY_0", "SSL_CERT_FILE",
        "REQUESTS_CA_BUNDLE", "HTTPS_PROXY", "https_proxy", "HOME", "SHELL", "TMPDIR", "LANG", "LC_ALL",
        "GCONV_PATH", "OPENSSL_CONF", "LESSOPEN", "PIP_INDEX_URL", "NPM_CONFIG_REGISTRY",
        "ACTIONS_ID_TOKEN_REQUEST_URL", "GITHUB_ENV", "TRANSOM_ID_TOKEN_COMMAND", "TRANSOM_LEASE_IDS",
    ],
)  # fmt: skip
def test_names_that_change_how_programs_run_are_dangerous(name: str) -> None:
    assert dangerous(name)


@pytest.mark.parametrize(
    "name",
    ["DB_PASSWORD", "DB_USER", "TOKEN", "ACCESSOR", "PGPASSWORD", "AWS_SECRET_ACCESS_KEY", "NODE_AUTH_TOKEN",
     "API_KEY", "DEPLOY_PATH", "PATHS"],
)  # fmt: skip
def test_ordinary_secret_names_pass(name: str) -> None:
    assert dangerous(name) is None
    assert refusal(name, JOB) is None


def test_a_name_the_job_already_sets_is_refused() -> None:
    assert refusal("DEPLOY_TARGET", JOB) == "the job's environment already sets it"


def test_the_review_keys_are_refused_naming_each_variable_and_showing_no_value() -> None:
    naming = EnvNaming.parse(["db"], [], [])
    with pytest.raises(UsageError) as refused:
        naming.environment([_lease({"SHELLOPTS": "xtrace", "PS4": "$(id>/tmp/x)", "password": "p"})], JOB)
    error = refused.value
    assert error.exit_code == EXIT_USAGE
    assert "$SHELLOPTS" in error.message and "$PS4" in error.message
    shown = "\n".join([error.message, *error.lines])
    assert "db/SHELLOPTS would be $SHELLOPTS" in shown
    assert "db/PS4 would be $PS4" in shown
    assert "--map" in shown
    assert "xtrace" not in shown and "id>" not in shown


@pytest.mark.parametrize(
    ("key", "prefixes", "variable"),
    [
        ("home", [], "$HOME"),  # collides with the job's own
        ("deploy-target", [], "$DEPLOY_TARGET"),
        ("preload", ["LD_"], "$LD_PRELOAD"),  # a prefix is not an explicit name
        ("ssh_command", ["db=GIT_"], "$GIT_SSH_COMMAND"),
        ("path", [], "$PATH"),
    ],
)
def test_default_and_prefixed_names_are_checked(key: str, prefixes: list[str], variable: str) -> None:
    naming = EnvNaming.parse(["db"], prefixes, [])
    with pytest.raises(UsageError) as refused:
        naming.environment([_lease({key: "v"})], JOB)
    assert variable in refused.value.message


def test_map_names_a_variable_explicitly_even_a_dangerous_or_existing_one() -> None:
    naming = EnvNaming.parse(["db"], [], ["db/home=HOME", "path=PATH", "other=PS4_SAFE"])
    leases = [_lease({"home": "/srv/app", "path": "/opt/bin", "other": "x"})]
    assert naming.environment(leases, JOB) == {"HOME": "/srv/app", "PATH": "/opt/bin", "PS4_SAFE": "x"}


def test_map_renames_a_dangerous_key_out_of_the_way() -> None:
    naming = EnvNaming.parse(["db"], [], ["SHELLOPTS=DB_SHELLOPTS"])
    assert naming.environment([_lease({"SHELLOPTS": "xtrace"})], JOB) == {"DB_SHELLOPTS": "xtrace"}


def test_a_key_that_could_forge_log_lines_is_shown_quoted() -> None:
    naming = EnvNaming.parse(["db"], [], [])
    with pytest.raises(UsageError) as refused:
        naming.environment([_lease({"ld_x\n::error::forged": "v"})], JOB)
    shown = "\n".join([refused.value.message, *refused.value.lines])
    assert "\n::error::" not in shown
    assert "'ld_x\\n::error::forged'" in shown
