"""Every admin command says which broker and as whom the same way as `transom lease`: ``--url``/
``TRANSOM_URL`` and ``--token``/``TRANSOM_TOKEN``, named in its --help; without a URL it stops (exit 2)
instead of trying http://127.0.0.1:8080 quietly."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from app.cli import main
from app.tlog.note import verifier_key

# A well-formed key, so the command gets as far as connecting.
SOME_KEY = verifier_key("transom/ledger", bytes(range(32)))

# Each admin command with the arguments it needs to get as far as connecting.
ADMIN_COMMANDS = [
    ["apply", "-f", "plan.toml"],
    ["audit", "verify", "--key", SOME_KEY],
    ["audit", "prove", "7", "--key", SOME_KEY],
    ["audit", "export"],
    ["leases", "list"],
    ["leases", "revoke", "lse_x"],
    ["policies", "evaluate", "deploy", "--secret", "s", "--token-file", "-"],
    ["windows", "show"],
]
UNSET = {"TRANSOM_URL": None, "TRANSOM_TOKEN": None, "TRANSOM_TOKEN_FILE": None}


@pytest.mark.parametrize("command", ADMIN_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_without_a_url_every_admin_command_stops_with_exit_2(command: list[str]) -> None:
    result = CliRunner().invoke(main, command, env={**UNSET, "TRANSOM_TOKEN": "trn_x"}, input="token")

    assert result.exit_code == 2
    assert "no broker URL: set TRANSOM_URL or pass --url" in result.output


@pytest.mark.parametrize("command", ADMIN_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_every_admin_command_names_its_url_and_token_settings(command: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"], env=UNSET)

    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "--url URL" in text and "[env: TRANSOM_URL]" in text
    assert "--token TOKEN" in text and "[env: TRANSOM_TOKEN" in text


def test_a_url_ending_in_v1_says_what_it_should_look_like() -> None:
    env = {**UNSET, "TRANSOM_URL": "https://transom.example.com/v1", "TRANSOM_TOKEN": "trn_x"}
    result = CliRunner().invoke(main, ["leases", "list"], env=env)

    assert result.exit_code == 2
    assert "without /v1: use 'https://transom.example.com'" in result.output


def test_url_and_token_can_be_given_as_options(live_url: str, admin_token: str) -> None:
    result = CliRunner().invoke(
        main, ["audit", "export", "--format", "jsonl", "--url", live_url, "--token", admin_token], env=UNSET
    )

    assert result.exit_code == 0, result.output
    assert '"action":"token.created"' in result.output.replace(" ", "")
