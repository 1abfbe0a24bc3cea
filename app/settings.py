"""Settings: the one reader of ``os.environ``.

Layers, lowest first: ``config/default.toml`` → ``config/{TRANSOM_ENV}.toml`` → ``TRANSOM_*`` environment
variables → explicit overrides (tests). The result is validated into a frozen :class:`Settings`; a bad
value fails at start with a message that names the setting.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import timedelta
from pathlib import Path
from typing import Any

from app.decision.durations import parse_duration

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = Path(os.environ.get("TRANSOM_CONFIG_DIR", PROJECT_ROOT / "config"))
INSTANCE_DIR = Path(os.environ.get("TRANSOM_INSTANCE_DIR", PROJECT_ROOT / "instance"))

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names it."""


@dataclass(frozen=True, slots=True)
class Settings:
    env: str = "production"
    database_url: str = ""
    vault_addr: str = "http://127.0.0.1:8200"
    vault_token: str | None = None
    vault_role_id: str | None = None
    vault_secret_id: str | None = None
    vault_timeout_seconds: float = 5.0
    vault_token_role: str = "transom-lease"  # the Vault token role that issues token secrets (README)
    scheduler: str = "off"
    allow_insecure_issuers: bool = False
    secret_key: str | None = None
    max_body_bytes: int = 65536
    jwks_ttl_seconds: int = 600
    jwks_refetch_cooldown_seconds: int = 30
    jwks_max_stale_seconds: int = 3600
    log_level: str = "INFO"
    log_format: str = ""  # json or text; empty: json under `transom serve`/`worker`, text elsewhere
    keepalive_seconds: int = 75  # gunicorn's keep-alive: above a load balancer's idle timeout (ALB: 60 s)
    auth_failures_per_minute: int = 60  # per client address and process; 0 turns the limit off
    trusted_proxy_hops: int = 0  # proxies in front whose X-Forwarded-For names the client
    token_max_ttl: str = "365d"  # the longest a broker token may live (a duration; docs/API.md)
    metrics_require_auth: bool = False  # /metrics then needs a broker token of any role
    ledger_origin: str = "transom/ledger"  # the log's name: first line of every checkpoint, its key's name
    # Approvals' notifications are POSTed here by the worker (docs/API.md); None: none are queued.
    notify_webhook_url: str | None = None

    @property
    def token_max_lifetime(self) -> timedelta:
        return parse_duration(self.token_max_ttl)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def __repr__(self) -> str:  # never print credentials
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        for secret in ("vault_token", "vault_secret_id", "secret_key", "notify_webhook_url"):
            if shown[secret]:
                shown[secret] = "***"
        return f"Settings({shown})"


# A Slack-style webhook URL is itself a credential: it may come from a file, and is never printed.
_SECRET_SETTINGS = ("vault_token", "vault_secret_id", "secret_key", "vault_role_id", "notify_webhook_url")


def _coerce(name: str, raw: Any, target: Any) -> Any:
    kind = target if isinstance(target, type) else None
    text = raw.strip() if isinstance(raw, str) else raw
    try:
        if kind is bool or isinstance(target, bool):
            if isinstance(text, bool):
                return text
            lowered = str(text).lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ValueError("expected true or false")
        if isinstance(target, int):
            return int(text)
        if isinstance(target, float):
            return float(text)
    except ValueError as exc:
        raise ConfigError(f"setting {name!r} (TRANSOM_{name.upper()}): {exc}") from None
    return None if text == "" and target is None else text


def _from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for f in fields(Settings):
        key = f"TRANSOM_{f.name.upper()}"
        if key in environ:
            found[f.name] = environ[key]
        elif f.name in _SECRET_SETTINGS and f"{key}_FILE" in environ:
            path = Path(environ[f"{key}_FILE"])
            try:
                found[f.name] = path.read_text().strip()
            except OSError as exc:
                raise ConfigError(f"setting {f.name!r}: cannot read {key}_FILE ({exc.strerror})") from None
    return found


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None


def load_settings(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    environ = os.environ if environ is None else environ
    env_name = (overrides or {}).get("env") or environ.get("TRANSOM_ENV") or "production"
    layers: dict[str, Any] = {}
    layers.update(_read_toml(CONFIG_DIR / "default.toml"))
    layers.update(_read_toml(CONFIG_DIR / f"{env_name}.toml"))
    layers.update(_from_environment(environ))
    layers.update(overrides or {})
    layers["env"] = env_name

    known = {f.name: f for f in fields(Settings)}
    unknown = sorted(set(layers) - set(known))
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    defaults = Settings()
    values = {name: _coerce(name, raw, getattr(defaults, name)) for name, raw in layers.items()}
    return _validate(Settings(**values))


def _validate(settings: Settings) -> Settings:
    if not settings.database_url:
        INSTANCE_DIR.mkdir(exist_ok=True)
        settings = _replace(settings, database_url=f"sqlite:///{INSTANCE_DIR / 'transom.db'}")
    if not settings.database_url.startswith(("sqlite", "postgresql")):
        raise ConfigError(
            "setting 'database_url': only sqlite:/// and postgresql+psycopg:// URLs are supported"
        )
    if settings.scheduler not in ("embedded", "off"):
        raise ConfigError("setting 'scheduler': must be 'embedded' or 'off'")
    if not settings.vault_addr.startswith(("http://", "https://")):
        raise ConfigError("setting 'vault_addr': must be an http:// or https:// URL")
    if bool(settings.vault_role_id) != bool(settings.vault_secret_id):
        raise ConfigError("settings 'vault_role_id' and 'vault_secret_id' go together (AppRole)")
    if settings.max_body_bytes < 1024:
        raise ConfigError("setting 'max_body_bytes': at least 1024")
    if settings.log_format not in ("", "json", "text"):
        raise ConfigError("setting 'log_format' (TRANSOM_LOG_FORMAT): must be 'json' or 'text'")
    if settings.keepalive_seconds < 1:
        raise ConfigError("setting 'keepalive_seconds' (TRANSOM_KEEPALIVE_SECONDS): at least 1")
    for name in ("auth_failures_per_minute", "trusted_proxy_hops"):
        if getattr(settings, name) < 0:
            raise ConfigError(f"setting {name!r}: must not be negative")
    _check_duration(settings, "token_max_ttl")
    if not re.fullmatch(r"[\x21-\x2a\x2c-\x7e]{1,255}", settings.ledger_origin):
        raise ConfigError(
            "setting 'ledger_origin' (TRANSOM_LEDGER_ORIGIN): 1 to 255 printable ASCII characters, "
            "no spaces and no '+' (it names the checkpoints' signing key)"
        )
    if settings.notify_webhook_url is not None and not settings.notify_webhook_url.startswith(
        ("http://", "https://")
    ):
        raise ConfigError("setting 'notify_webhook_url' (TRANSOM_NOTIFY_WEBHOOK_URL): must be an http(s) URL")
    return settings


def _check_duration(settings: Settings, name: str) -> None:
    try:
        if parse_duration(getattr(settings, name)).total_seconds() <= 0:
            raise ValueError("must be positive")
    except ValueError as exc:
        raise ConfigError(f"setting {name!r} (TRANSOM_{name.upper()}): {exc}") from None


def require_secret_key(settings: Settings) -> None:
    """The web pages sign their session cookie with it; a random key per process would log users out on
    every restart and break with several replicas, so production refuses to start without one."""
    if settings.env == "production" and not settings.secret_key:
        raise ConfigError("setting 'secret_key' (TRANSOM_SECRET_KEY) is required in production")


def _replace(settings: Settings, **changes: Any) -> Settings:
    values = {f.name: getattr(settings, f.name) for f in fields(settings)}
    values.update(changes)
    return Settings(**values)
