"""The long-lived collaborators of one broker process, built once by the app factory.

Services are cheap and built per request or per job from these parts; nothing here reads Flask's globals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import cast

from flask.sansio.app import App
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.audit.signer import LedgerSigner, TransitSigner
from app.clock import Clock
from app.config_snapshot.snapshot import ConfigSnapshot, SnapshotCache
from app.db import make_engine, make_session_factory, read_only
from app.identity.jwks import JwksCache
from app.identity.oidc import TokenVerifier
from app.identity.workload import VerifiedToken
from app.leases.token_claims import token_claims
from app.settings import Settings
from app.vault.hvac_backend import HvacBackend
from app.vault.port import SecretBackend


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock
    vault: SecretBackend
    jwks: JwksCache
    read_sessions: sessionmaker[Session]  # for long reads such as exports
    ledger_signer: LedgerSigner  # signs the log's checkpoints (Vault transit)
    snapshots: SnapshotCache = field(default_factory=SnapshotCache)

    def workload_verifier(
        self, session: Session, config: Callable[[], ConfigSnapshot] | None = None
    ) -> Callable[[str], VerifiedToken]:
        """Verify a CI token against the issuers registered in the database as of this session (``config``:
        the request's snapshot of them, when the caller already holds one)."""
        snapshot = config or (lambda: self.snapshots.current(session))
        verifier = TokenVerifier(issuers=lambda url: snapshot().issuer(url), jwks=self.jwks, clock=self.clock)
        return verifier.verify


_EXTENSION = "transom"


def install_runtime(app: App, runtime: Runtime) -> Runtime:
    """Make ``runtime`` the one :func:`runtime_of` answers for ``app`` (the app factory, once)."""
    app.extensions[_EXTENSION] = runtime
    return runtime


def runtime_of(app: App) -> Runtime:
    """The runtime the app factory built for ``app``; views ask it through ``request_context.runtime()``."""
    return cast(Runtime, app.extensions[_EXTENSION])


def build_runtime(
    settings: Settings,
    *,
    clock: Clock,
    vault: SecretBackend | None = None,
    ledger_signer: LedgerSigner | None = None,
) -> Runtime:
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    backend = vault or _hvac_backend(settings, sessions)
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=sessions,
        read_sessions=make_session_factory(read_only(engine)),
        clock=clock,
        vault=backend,
        ledger_signer=ledger_signer or _transit_signer(backend, settings, sessions),
        jwks=JwksCache(
            clock=clock,
            ttl=timedelta(seconds=settings.jwks_ttl_seconds),
            refetch_cooldown=timedelta(seconds=settings.jwks_refetch_cooldown_seconds),
            max_stale=timedelta(seconds=settings.jwks_max_stale_seconds),
        ),
    )


def _transit_signer(
    backend: SecretBackend, settings: Settings, sessions: sessionmaker[Session]
) -> TransitSigner:
    """The broker's own Vault identity signs checkpoints too (behind a test's wrapped backend: a real one)."""
    signing = backend if isinstance(backend, HvacBackend) else _hvac_backend(settings, sessions)
    return TransitSigner(cast(HvacBackend, signing).call)


def _hvac_backend(settings: Settings, sessions: sessionmaker[Session]) -> SecretBackend:
    return HvacBackend(
        settings.vault_addr,
        token=settings.vault_token,
        role_id=settings.vault_role_id,
        secret_id=settings.vault_secret_id,
        timeout=settings.vault_timeout_seconds,
        token_role=settings.vault_token_role,
        token_claims=lambda: token_claims(sessions),  # crash recovery: what the leases table claims
        defer_token_leases=True,  # no listing of the role's leases on the request path (issue 14)
    )
