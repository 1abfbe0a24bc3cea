"""The client's pure parts: variable names, masks, the $GITHUB_ENV block, reading a denial's next opening.

(Unit tests; they sit with the client's other tests because this directory is the client's.)"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.client.broker import LeaseView
from app.client.errors import DenialReason, Denied, UsageError
from app.client.leaseset import renew_after
from app.client.naming import EnvNaming, default_name
from app.client.output import github_env_block, lease_ids, mask_commands, render_dotenv, render_env
from app.client.report import Reporter, humane_delay, next_opening


def _lease(secret: str, data: dict[str, object], lease_id: str = "lse_1") -> LeaseView:
    return LeaseView.from_json(
        {"id": lease_id, "secret": secret, "status": "active", "ttl": 60, "data": data}
    )


@pytest.mark.parametrize(
    ("key", "prefix", "name"),
    [
        ("db_password", "", "DB_PASSWORD"),
        ("db-password", "", "DB_PASSWORD"),
        ("api.key/v2", "DEPLOY_", "DEPLOY_API_KEY_V2"),
        ("1st", "", "_1ST"),
    ],
)
def test_default_names(key: str, prefix: str, name: str) -> None:
    assert default_name(key, prefix) == name


def test_map_and_per_secret_prefix_name_values_apart() -> None:
    naming = EnvNaming.parse(["db", "cache"], ["cache=CACHE_"], ["db/password=PGPASSWORD"])
    env = naming.environment(
        [_lease("db", {"password": "a", "user": "u"}), _lease("cache", {"password": "b", "port": 6379})],
        {},
    )
    assert env == {"PGPASSWORD": "a", "USER": "u", "CACHE_PASSWORD": "b", "CACHE_PORT": "6379"}


def test_two_values_for_one_variable_are_refused_without_showing_them() -> None:
    naming = EnvNaming.parse(["db", "cache"], [], [])
    with pytest.raises(UsageError) as refused:
        naming.environment(
            [_lease("db", {"password": "s3cret-a"}), _lease("cache", {"password": "s3cret-b"})], {}
        )
    assert "db/password and cache/password would both be $PASSWORD" in refused.value.message
    assert "s3cret" not in refused.value.message + " ".join(refused.value.lines)


@pytest.mark.parametrize("bad", [["--nope"], ["x=1ABC"], ["x=A-B"]])
def test_invalid_map_targets_are_usage_errors(bad: list[str]) -> None:
    with pytest.raises(UsageError):
        EnvNaming.parse(["db"], [], bad)


def test_a_map_naming_no_key_is_refused() -> None:
    naming = EnvNaming.parse(["db"], [], ["passwd=PGPASSWORD"])
    with pytest.raises(UsageError, match="passwd"):
        naming.environment([_lease("db", {"password": "x"})], {})


def test_masks_cover_each_line_and_the_escaped_forms() -> None:
    commands = mask_commands(["one\ntwo%\r\n", "tab\there"], "json")
    assert commands == [
        "::add-mask::one",
        "::add-mask::two%25",
        "::add-mask::one\\ntwo%25\\r\\n",  # the JSON-escaped form, as json output would print it
        "::add-mask::tab\there",
        "::add-mask::tab\\there",
    ]


def test_github_env_block_delimiter_is_random_and_never_in_the_value() -> None:
    value = "line1\nghadelimiter_x\nline3"
    first, second = github_env_block("CERT", value), github_env_block("CERT", value)
    header = first.splitlines()[0]
    delimiter = header.removeprefix("CERT<<")
    assert first == f"CERT<<{delimiter}\n{value}\n{delimiter}\n"
    assert delimiter not in value
    assert first != second


def test_env_and_dotenv_quote_what_a_shell_or_dotenv_reader_would_misread() -> None:
    assert render_env({"A": "it's $HOME"}) == "export A='it'\\''s $HOME'\n"
    assert render_dotenv({"A": 'say "hi"\n\\'}) == 'A="say \\"hi\\"\\n\\\\"\n'


def test_lease_ids_accumulate_across_steps() -> None:
    assert lease_ids("lse_a", [_lease("db", {}, "lse_b"), _lease("db", {}, "lse_a")]) == "lse_a lse_b"


def test_next_opening_is_read_from_the_reasons_and_shown_with_the_wait() -> None:
    denial = Denied(
        "denied",
        reasons=[
            DenialReason("branch_not_allowed", "branch 'x' does not match any of: main"),
            DenialReason(
                "outside_window", "outside the windows (a); the next opening is at 2026-12-01T10:00:00Z"
            ),
            DenialReason(
                "outside_window", "outside the windows (b); the next opening is at 2026-12-01T08:30:00Z"
            ),
        ],
    )
    assert next_opening(denial) == datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
    lines: list[str] = []
    Reporter(lines.append, now=lambda: datetime(2026, 12, 1, 6, 0, tzinfo=UTC)).error(denial)
    assert lines[-1] == "  next window opening: 2026-12-01T08:30:00Z (in 2h 30m)"
    assert any(line.startswith("  - branch_not_allowed") for line in lines)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (59, "59s"), (61, "1m"), (3 * 86400 + 7200, "3d 2h")]
)
def test_humane_delay(seconds: float, text: str) -> None:
    assert humane_delay(seconds) == text


@pytest.mark.parametrize(("ttl", "after"), [(1200, 800), (60, 40), (30, 15), (6, 2)])
def test_renewal_comes_at_two_thirds_or_early_enough_for_a_short_lease(ttl: float, after: float) -> None:
    assert renew_after(ttl) == pytest.approx(after)
