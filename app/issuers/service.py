"""Registered OIDC issuers: the CI platforms whose ID tokens Transom accepts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.ledger import Actor, Ledger
from app.clock import Clock
from app.config_store import ConfigStore
from app.errors import BadRequest, Conflict
from app.identity.issuer_config import IssuerConfig
from app.issuers.models import Issuer
from app.policies.models import Policy

LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


def insecure_url_problem(url: str, *, allow_insecure: bool) -> str | None:
    """Issuers must be https; plain http only on loopback and only when the broker allows it."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return None
    if allow_insecure and parts.scheme == "http" and (parts.hostname or "") in LOOPBACK_HOSTS:
        return None
    if allow_insecure:
        return "must be https:// (plain http is allowed only on loopback)"
    return "must be https:// (TRANSOM_ALLOW_INSECURE_ISSUERS=1 allows http on loopback for development)"


def to_config(issuer: Issuer) -> IssuerConfig:
    return IssuerConfig(
        name=issuer.name,
        issuer=issuer.issuer,
        flavor=issuer.flavor,  # type: ignore[arg-type]  # validated on the way in
        audiences=tuple(issuer.audiences),
        jwks_uri=issuer.jwks_uri,
        leeway_seconds=issuer.leeway_seconds,
        claim_map=issuer.claim_map,
    )


def find_issuer_config(session: Session, issuer_url: str) -> IssuerConfig | None:
    """The registered issuer whose ``iss`` is exactly ``issuer_url``."""
    found = session.scalar(select(Issuer).where(Issuer.issuer == issuer_url))
    return to_config(found) if found is not None else None


def snapshot(issuer: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("name", "issuer", "flavor", "audiences", "jwks_uri", "leeway_seconds", "claim_map")
    return {k: issuer.get(k) for k in keys}


class IssuerService:
    def __init__(self, session: Session, clock: Clock, ledger: Ledger, *, allow_insecure: bool) -> None:
        self._session = session
        self._store: ConfigStore[Issuer] = ConfigStore(session, clock, ledger, Issuer, "issuer")
        self._allow_insecure = allow_insecure

    def list_issuers(self, *, limit: int, before_id: int | None) -> Sequence[Issuer]:
        return self._store.list(limit=limit, before_id=before_id)

    def get_issuer(self, name: str) -> Issuer:
        return self._store.get(name)

    def create_issuer(self, values: Mapping[str, Any], *, actor: Actor) -> Issuer:
        self._check_urls(values)
        self._check_unique_url(values["issuer"], name=values["name"])
        return self._store.create(values, actor=actor, snapshot=snapshot(values))

    def replace_issuer(self, name: str, values: Mapping[str, Any], *, actor: Actor) -> Issuer:
        values = {**values, "name": values.get("name", name)}
        self._check_urls(values)
        self._check_unique_url(values["issuer"], name=name)
        return self._store.replace(name, values, actor=actor, snapshot=snapshot(values))

    def delete_issuer(self, name: str, *, actor: Actor) -> None:
        self._store.get(name)
        users = self._session.scalars(select(Policy.name).where(Policy.issuer == name)).all()
        if users:
            raise Conflict(f"issuer {name!r} is used by policies: {', '.join(sorted(users))}")
        self._store.delete(name, actor=actor)

    def _check_urls(self, values: Mapping[str, Any]) -> None:
        errors = {}
        for field in ("issuer", "jwks_uri"):
            url = values.get(field)
            if url and (problem := insecure_url_problem(url, allow_insecure=self._allow_insecure)):
                errors[field] = [problem]
        if errors:
            raise BadRequest("The issuer's addresses are not allowed.", errors=errors)

    def _check_unique_url(self, url: str, *, name: str) -> None:
        other = self._session.scalar(select(Issuer.name).where(Issuer.issuer == url, Issuer.name != name))
        if other is not None:
            raise Conflict(f"issuer {other!r} already has the address {url}")


def policies_using_issuer(session: Session, name: str) -> set[str]:
    return set(session.scalars(select(Policy.name).where(Policy.issuer == name)))
