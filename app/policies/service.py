"""Policies: who may lease which secrets, from where and when."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.ledger import Actor, Ledger
from app.clock import Clock
from app.config_store import ConfigStore
from app.decision.policy import PolicyView
from app.errors import BadRequest, Conflict
from app.issuers.models import Issuer
from app.policies.approval_rules import to_column, to_rule
from app.policies.models import Policy
from app.secrets.models import Secret
from app.windows.models import Freeze, Window

ALWAYS_WINDOW = "always"
DEFAULT_TTL_CAP = timedelta(minutes=15)


def _ids(values: Iterable[str | int] | None) -> list[str] | None:
    """Platform ids (repository, runner) as strings, as tokens state them; ``None`` stays absent."""
    return None if values is None else list(dict.fromkeys(str(value) for value in values))


def _distinct(values: Iterable[str] | None) -> list[str] | None:
    """A list without repeats, in order; ``None`` (no restriction) stays ``None``."""
    return None if values is None else list(dict.fromkeys(values))


def to_columns(values: Mapping[str, Any]) -> dict[str, Any]:
    max_ttl: timedelta = values["max_ttl"]
    # Without a default_ttl, a lease lasts 15 minutes (or max_ttl when that is shorter).
    default_ttl: timedelta = values.get("default_ttl") or min(DEFAULT_TTL_CAP, max_ttl)
    runners = values.get("runners") or {}
    return {
        "name": values["name"],
        "issuer": values["issuer"],
        "secrets": list(dict.fromkeys(values["secrets"])),
        "repositories": list(values.get("repositories") or []),
        "branches": list(values.get("branches") or []),
        "tags": list(values.get("tags") or []),
        "require_protected_ref": bool(values.get("require_protected_ref")),
        "environments": list(values.get("environments") or []),
        "runner_environments": list(runners.get("environments") or []),
        "runner_ids": _ids(runners.get("ids")) or [],
        "events": list(values["events"]) if values.get("events") is not None else None,
        "repository_ids": _ids(values.get("repository_ids")),
        "require_protected_environment": bool(values.get("require_protected_environment")),
        "workflows": _distinct(values.get("workflows")),
        "source_networks": _distinct(values.get("source_networks")),
        "windows": list(dict.fromkeys(values["windows"])),
        "default_ttl_seconds": int(default_ttl.total_seconds()),
        "max_ttl_seconds": int(max_ttl.total_seconds()),
        "max_active": values.get("max_active"),
        "approval": to_column(values.get("approval")),
        "break_glass": to_column(values.get("break_glass")),
    }


def to_view(policy: Policy) -> PolicyView:
    return PolicyView(
        name=policy.name,
        issuer=policy.issuer,
        secrets=tuple(policy.secrets),
        repositories=tuple(policy.repositories),
        branches=tuple(policy.branches),
        tags=tuple(policy.tags),
        require_protected_ref=policy.require_protected_ref,
        environments=tuple(policy.environments),
        runner_environments=tuple(policy.runner_environments),
        runner_ids=tuple(policy.runner_ids),
        events=tuple(policy.events) if policy.events is not None else None,
        windows=tuple(policy.windows),
        default_ttl=timedelta(seconds=policy.default_ttl_seconds),
        max_ttl=timedelta(seconds=policy.max_ttl_seconds),
        max_active=policy.max_active,
        repository_ids=tuple(policy.repository_ids) if policy.repository_ids is not None else None,
        require_protected_environment=policy.require_protected_environment,
        workflows=tuple(policy.workflows) if policy.workflows is not None else None,
        source_networks=tuple(policy.source_networks) if policy.source_networks is not None else None,
        approval=to_rule(policy.approval),
        break_glass=to_rule(policy.break_glass),
    )


def policies_naming_secret(session: Session, secret: str) -> list[Policy]:
    """Every policy that names ``secret``, in name order (the order in which they are tried)."""
    return [p for p in session.scalars(select(Policy).order_by(Policy.name)) if secret in p.secrets]


def _missing(wanted: Iterable[str], existing: Iterable[str]) -> list[str]:
    have = set(existing)
    return [name for name in wanted if name not in have]


class PolicyService:
    def __init__(self, session: Session, clock: Clock, ledger: Ledger) -> None:
        self._session = session
        self._store: ConfigStore[Policy] = ConfigStore(session, clock, ledger, Policy, "policy")

    def list_policies(self, *, limit: int, before_id: int | None) -> Sequence[Policy]:
        return self._store.list(limit=limit, before_id=before_id)

    def get_policy(self, name: str) -> Policy:
        return self._store.get(name)

    def create_policy(self, values: Mapping[str, Any], *, actor: Actor) -> Policy:
        columns = to_columns(values)
        self._check_references(columns)
        return self._store.create(columns, actor=actor, snapshot=columns)

    def replace_policy(self, name: str, values: Mapping[str, Any], *, actor: Actor) -> Policy:
        columns = to_columns({**values, "name": values.get("name", name)})
        self._check_references(columns)
        return self._store.replace(name, columns, actor=actor, snapshot=columns)

    def delete_policy(self, name: str, *, actor: Actor) -> None:
        self._store.get(name)
        freezes = [f.name for f in self._session.scalars(select(Freeze)) if name in f.policies]
        if freezes:
            raise Conflict(f"policy {name!r} is named by freezes: {', '.join(sorted(freezes))}")
        self._store.delete(name, actor=actor)

    def _check_references(self, columns: Mapping[str, Any]) -> None:
        errors: dict[str, list[str]] = {}
        if self._session.scalar(select(Issuer.id).where(Issuer.name == columns["issuer"])) is None:
            errors["issuer"] = [f"no issuer named {columns['issuer']!r}"]
        secrets = _missing(columns["secrets"], self._session.scalars(select(Secret.name)))
        if secrets:
            errors["secrets"] = [f"no secret named {name!r}" for name in secrets]
        windows = _missing(columns["windows"], [ALWAYS_WINDOW, *self._session.scalars(select(Window.name))])
        if windows:
            errors["windows"] = [f"no window named {name!r}" for name in windows]
        if errors:
            raise BadRequest("The policy refers to objects that do not exist.", errors=errors)
