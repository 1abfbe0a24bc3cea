"""Named targets in Vault that policies grant leases on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.ledger import Actor, Ledger
from app.clock import Clock
from app.config_store import ConfigStore
from app.errors import BadRequest, Conflict, ServiceUnavailable
from app.policies.models import Policy
from app.secrets.models import Secret
from app.vault.port import TOKEN_GUARD_POLICY, SecretBackend, SecretSpec, VaultError, VaultUnavailable


def to_columns(values: Mapping[str, Any]) -> dict[str, Any]:
    kind = values["kind"]
    return {
        "name": values["name"],
        "kind": kind,
        "mount": values.get("mount", "secret") if kind == "kv" else None,
        "path": values.get("path"),
        "keys": values.get("keys"),
        "vault_policies": values.get("policies"),
        "num_uses": values.get("num_uses", 0),
    }


def to_spec(secret: Secret) -> SecretSpec:
    return SecretSpec(
        name=secret.name,
        kind=secret.kind,  # type: ignore[arg-type]  # validated on the way in
        mount=secret.mount,
        path=secret.path,
        keys=tuple(secret.keys) if secret.keys else None,
        policies=tuple(secret.vault_policies or ()),
        num_uses=secret.num_uses,
    )


def snapshot(columns: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in columns.items() if v is not None}


class SecretService:
    def __init__(
        self, session: Session, clock: Clock, ledger: Ledger, vault: SecretBackend | None = None
    ) -> None:
        self._session = session
        self._vault = vault
        self._store: ConfigStore[Secret] = ConfigStore(session, clock, ledger, Secret, "secret")

    def list_secrets(self, *, limit: int, before_id: int | None) -> Sequence[Secret]:
        return self._store.list(limit=limit, before_id=before_id)

    def get_secret(self, name: str) -> Secret:
        return self._store.get(name)

    def find_secret(self, name: str) -> Secret | None:
        return self._store.find(name)

    def create_secret(self, values: Mapping[str, Any], *, actor: Actor) -> Secret:
        columns = to_columns(values)
        self._check_token_policies(columns)
        return self._store.create(columns, actor=actor, snapshot=snapshot(columns))

    def replace_secret(self, name: str, values: Mapping[str, Any], *, actor: Actor) -> Secret:
        columns = to_columns({**values, "name": values.get("name", name)})
        self._check_token_policies(columns)
        return self._store.replace(name, columns, actor=actor, snapshot=snapshot(columns))

    def delete_secret(self, name: str, *, actor: Actor) -> None:
        self._store.get(name)
        users = [p.name for p in self._session.scalars(select(Policy)) if name in p.secrets]
        if users:
            raise Conflict(f"secret {name!r} is used by policies: {', '.join(sorted(users))}")
        self._store.delete(name, actor=actor)

    def _check_token_policies(self, columns: Mapping[str, Any]) -> None:
        """A token secret may only name policies the broker's Vault token role allows (issue 18): Vault would
        refuse them at every lease anyway; saying so now names the allowed ones to the admin."""
        if columns["kind"] != "token" or self._vault is None:
            return
        try:
            role = self._vault.token_role_policies()
        except VaultUnavailable as exc:
            raise ServiceUnavailable(f"cannot check the policies at the Vault token role: {exc}") from exc
        except VaultError as exc:
            raise BadRequest(f"cannot check the policies at the Vault token role: {exc}") from exc
        refused = role.refused([*(columns["vault_policies"] or ()), TOKEN_GUARD_POLICY])
        if refused:
            raise BadRequest(
                f"Vault token role {role.role!r} does not allow the policies {', '.join(refused)}; "
                f"it allows: {role.describe()}",
                errors={"policies": [f"not allowed by token role {role.role!r}: {', '.join(refused)}"]},
            )
