"""Vault against the database: every credential alive at OpenBao must belong to an active lease."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
import requests
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.leases.models import Lease, LeaseStatus
from tests.support.openbao import DATABASE_MOUNT, DATABASE_ROLE, OpenBaoServer
from tests.support.soak.cluster import SoakCluster
from tests.support.soak.options import ENDED, HTTP_TIMEOUT, PG_PARAMS


@dataclass(frozen=True, slots=True)
class Alive:
    """A credential OpenBao still holds: a token (``key`` = its ``transom_lease`` meta) or a database
    lease (``key`` = the Vault lease id), seen alive by a request sent at ``seen_at`` (epoch seconds)."""

    kind: str
    key: str
    seen_at: float


class VaultInventory:
    """OpenBao's live credentials, listed with the root token."""

    def __init__(self, vault: OpenBaoServer) -> None:
        self._addr = vault.addr
        self._headers = {"X-Vault-Token": vault.root_token}

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> requests.Response:
        return requests.request(
            method, f"{self._addr}/v1/{path}", headers=self._headers, json=body, timeout=HTTP_TIMEOUT
        )

    def credentials(self) -> tuple[list[Alive], int]:
        """Every Transom token and database lease alive now; and how many token accessors were looked at."""
        alive: list[Alive] = []
        listing = self._call("LIST", "auth/token/accessors")
        listing.raise_for_status()
        accessors = listing.json()["data"]["keys"]
        with requests.Session() as http:
            for accessor in accessors:
                seen_at = time.time()
                found = http.post(
                    f"{self._addr}/v1/auth/token/lookup-accessor",
                    json={"accessor": accessor},
                    headers=self._headers,
                    timeout=HTTP_TIMEOUT,
                )
                if found.status_code == 400:  # expired or revoked since the listing
                    continue
                found.raise_for_status()
                meta = found.json()["data"].get("meta") or {}
                if meta.get("transom_lease"):
                    alive.append(Alive("token", str(meta["transom_lease"]), seen_at))
        prefix = f"{DATABASE_MOUNT}/creds/{DATABASE_ROLE}/"
        seen_at = time.time()
        leases = self._call("LIST", f"sys/leases/lookup/{prefix}")
        if leases.status_code != 404:  # 404: none
            leases.raise_for_status()
            keys = leases.json()["data"]["keys"]
            alive += [Alive("dynamic", prefix + key, seen_at) for key in keys]
        return alive, len(accessors)


@dataclass(frozen=True, slots=True)
class LeaseState:
    id: str
    status: str
    ended_at: float | None


def lease_states(
    sessions: sessionmaker[Session], alive: Iterable[Alive]
) -> dict[tuple[str, str], LeaseState]:
    """The database's lease for each live credential, keyed like ``(Alive.kind, Alive.key)``."""
    tokens = sorted({a.key for a in alive if a.kind == "token"})
    dynamic = sorted({a.key for a in alive if a.kind == "dynamic"})
    found: dict[tuple[str, str], LeaseState] = {}
    columns = select(Lease.id, Lease.status, Lease.ended_at, Lease.vault_lease_id)
    with sessions() as session:
        for kind, keys, column in (("token", tokens, Lease.id), ("dynamic", dynamic, Lease.vault_lease_id)):
            for chunk in _chunks(keys, 500):
                for row in session.execute(columns.where(column.in_(chunk))):
                    key = row.id if kind == "token" else str(row.vault_lease_id)
                    found[(kind, key)] = LeaseState(row.id, row.status, _ts(row.ended_at))
    return found


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _ts(instant: datetime | None) -> float | None:
    return instant.timestamp() if instant is not None else None


def snapshot_leaks(cluster: SoakCluster, inventory: VaultInventory) -> tuple[list[str], int]:
    """During the load: credentials alive at OpenBao after the database recorded their lease as ended
    (which it does only after Vault confirmed the revocation), or tokens of a lease the database never had
    (a token is created only after its write-ahead row committed). Returns (leaks, credentials seen)."""
    alive, _ = inventory.credentials()
    states = lease_states(cluster.sessions, alive)
    leaks = []
    for credential in alive:
        state = states.get((credential.kind, credential.key))
        if state is None:
            if credential.kind == "token":  # a dynamic one may be between Vault's answer and activation
                leaks.append(f"token of unknown lease {credential.key} alive at Vault")
            continue
        if state.status in ENDED and state.ended_at is not None and state.ended_at < credential.seen_at:
            late = credential.seen_at - state.ended_at
            leaks.append(
                f"{credential.kind} credential of {state.id} alive {late:.1f} s after the lease ended "
                f"({state.status})"
            )
    return leaks, len(alive)


def end_leaks(cluster: SoakCluster, inventory: VaultInventory) -> tuple[list[str], int, int]:
    """At the end: every credential alive at OpenBao without an active lease. (leaks, alive, accessors)."""
    alive, accessors = inventory.credentials()
    states = lease_states(cluster.sessions, alive)
    leaks = []
    for credential in alive:
        state = states.get((credential.kind, credential.key))
        if state is None:
            leaks.append(f"{credential.kind} credential alive at Vault for no lease in the database")
        elif state.status != LeaseStatus.ACTIVE:
            leaks.append(f"{credential.kind} credential of {state.id} alive at Vault ({state.status})")
    return leaks, len(alive), accessors


def leftover_roles(cluster: SoakCluster) -> int:
    with psycopg.connect(**PG_PARAMS) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_roles WHERE starts_with(rolname, %s)", (cluster.vault.role_prefix,)
        ).fetchone()
        return int(row[0]) if row else 0
