"""Settings are layered and validated at start, with messages that name the setting."""

from __future__ import annotations

import pytest

from app.settings import ConfigError, load_settings, require_secret_key


def test_environment_overrides_files_and_overrides_win() -> None:
    settings = load_settings(
        {"vault_timeout_seconds": "2.5"},
        environ={"TRANSOM_ENV": "test", "TRANSOM_VAULT_ADDR": "https://vault.internal:8200"},
    )
    assert settings.env == "test"
    assert settings.vault_addr == "https://vault.internal:8200"
    assert settings.vault_timeout_seconds == 2.5
    assert settings.allow_insecure_issuers is True  # from config/test.toml


def test_default_database_is_sqlite_under_instance() -> None:
    settings = load_settings(environ={"TRANSOM_ENV": "test"})
    assert settings.database_url.startswith("sqlite:///") and settings.database_url.endswith("transom.db")
    assert settings.is_sqlite


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"TRANSOM_SCHEDULER": "sometimes"}, "scheduler"),
        ({"TRANSOM_ALLOW_INSECURE_ISSUERS": "maybe"}, "allow_insecure_issuers"),
        ({"TRANSOM_MAX_BODY_BYTES": "lots"}, "max_body_bytes"),
        ({"TRANSOM_DATABASE_URL": "mysql://x"}, "database_url"),
        ({"TRANSOM_VAULT_ADDR": "vault:8200"}, "vault_addr"),
        ({"TRANSOM_VAULT_ROLE_ID": "r"}, "vault_secret_id"),
        ({"TRANSOM_LOG_FORMAT": "xml"}, "log_format"),
        ({"TRANSOM_KEEPALIVE_SECONDS": "0"}, "keepalive_seconds"),
        ({"TRANSOM_KEEPALIVE_SECONDS": "long"}, "keepalive_seconds"),
    ],
)
def test_invalid_settings_fail_naming_the_setting(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(environ={"TRANSOM_ENV": "test", **environ})


def test_keepalive_outlasts_a_load_balancers_idle_timeout_by_default() -> None:
    settings = load_settings(environ={"TRANSOM_ENV": "test"})
    assert settings.keepalive_seconds == 75 and settings.log_format == ""
    assert load_settings(environ={"TRANSOM_KEEPALIVE_SECONDS": "3"}).keepalive_seconds == 3


def test_unknown_override_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings({"vault_adress": "x"}, environ={"TRANSOM_ENV": "test"})


def test_production_needs_a_secret_key() -> None:
    settings = load_settings(environ={})
    with pytest.raises(ConfigError, match="secret_key"):
        require_secret_key(settings)
    require_secret_key(load_settings(environ={"TRANSOM_SECRET_KEY": "k" * 32}))


def test_secrets_can_come_from_files(tmp_path: pytest.TempPathFactory) -> None:
    token_file = tmp_path / "vault-token"  # type: ignore[operator]
    token_file.write_text("s.from-a-file\n")
    settings = load_settings(environ={"TRANSOM_ENV": "test", "TRANSOM_VAULT_TOKEN_FILE": str(token_file)})
    assert settings.vault_token == "s.from-a-file"
    assert "s.from-a-file" not in repr(settings)
